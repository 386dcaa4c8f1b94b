// GraphiQL for the Case Repository: every file from this server, nothing typed kept beyond the page.
//
// - The URL never changes: Strawberry's stock page copies the query (a PESEL, say) into the address bar, and so
//   into the browser history and every proxy log; this page keeps no state in the URL and reads none from it.
// - GraphiQL's Storage is a Map in this page's memory, so its tabs, queries, variables, headers (the token) and
//   history never reach localStorage, where they would stay on a shared branch PC's disk. A reload starts afresh.
// - The example operations of graphql/operations/ (embedded by the server as JSON) are the first tabs.
// - Headers are per tab in GraphiQL; a tab not opened yet shows the headers typed last, so one pasted token
//   serves every example.
(function () {
  "use strict";

  const memory = new Map();
  const inMemoryStorage = {
    getItem: (key) => (memory.has(key) ? memory.get(key) : null),
    setItem: (key, value) => { memory.set(key, String(value)); },
    removeItem: (key) => { memory.delete(key); },
    clear: () => { memory.clear(); },
    key: (index) => Array.from(memory.keys())[index] ?? null,
    get length() { return memory.size; },
  };

  const START = `# Sign in first: open Headers below and paste one
# line that  python -m auth.dev_tokens  prints,
# e.g. {"Authorization": "Bearer eyJ…"}; then run
# this with Ctrl-Enter (or the play button).
# The other tabs: graphql/operations/, with their
# example variables.
query StartHere {
  case(id: "CASE-2026-000123") {
    id title status stage customer { name pesel }
  }
}
`;
  const operations = JSON.parse(document.getElementById("operations").textContent);
  const tabs = [{ query: START }].concat(operations.map((operation) => ({
    query: `# graphql/operations/${operation.name}\n${operation.query}`,
    variables: operation.variables || null,
  })));

  // Only origin and path: whatever sits after "?" is neither sent nor kept.
  const url = window.location.origin + window.location.pathname;
  const fetcher = GraphiQL.createFetcher({
    url: url,
    // Subscriptions: graphql-transport-ws, the Headers tab's JSON as the connection_init payload (the token).
    subscriptionUrl: url.replace(/^http/, "ws"),
  });
  const explorer = GraphiQLPluginExplorer.explorerPlugin();

  function CaseRepositoryGraphiQL() {
    const [lastHeaders, setLastHeaders] = React.useState("");
    return React.createElement(GraphiQL, {
      fetcher: fetcher,
      storage: inMemoryStorage,
      defaultTabs: tabs,
      defaultHeaders: lastHeaders,
      onEditHeaders: (headers) => { if (headers.trim()) setLastHeaders(headers); },
      shouldPersistHeaders: false,
      isHeadersEditorEnabled: true,
      defaultEditorToolsVisibility: "headers",
      inputValueDeprecation: true,
      plugins: [explorer],
    });
  }

  ReactDOM.createRoot(document.getElementById("graphiql")).render(React.createElement(CaseRepositoryGraphiQL));
})();
