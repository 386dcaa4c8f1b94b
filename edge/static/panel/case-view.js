// The signed-in participant's case, drawn from `panelCase`: every text set with textContent, never as HTML.

// Words for the states the API returns as codes; an unknown code is shown as it comes.
const ACTION_STATES = { CREATED: "To do", COMPLETION_REQUESTED: "Done – the bank is processing it",
  COMPLETED: "Done", CANCELLED: "No longer needed" };
const CONSENT_STATES = { REQUESTED: "Waiting for your answer", GRANTED: "You consented",
  DECLINED: "You did not consent" };
const DOCUMENT_STATES = { MISSING: "Waiting for you to send it", REQUESTED: "Waiting for you to send it",
  REJECTED: "The bank could not accept it – please send it again", ORDERED: "Ordered by the bank",
  UPLOADED: "Sent – the bank will check it", RECEIVED: "Received by the bank", ACCEPTED: "Accepted",
  VERIFIED: "Accepted" };
const OPEN_ACTIONS = new Set(["CREATED", "ASSIGNED"]);
// A participant may send (or send again) their own documents until the bank has accepted them.
const SETTLED_DOCUMENTS = new Set(["ACCEPTED", "VERIFIED"]);
const UPLOAD_TYPES = "application/pdf,image/jpeg,image/png,.pdf,.jpg,.jpeg,.png";

const when = new Intl.DateTimeFormat("en-GB", { dateStyle: "medium", timeStyle: "short", timeZone: "Europe/Warsaw" });
const day = new Intl.DateTimeFormat("en-GB", { dateStyle: "long", timeZone: "Europe/Warsaw" });
const $ = (id) => document.getElementById(id);

function element(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = text;
  if (className) node.className = className;
  return node;
}

function button(text, onClick, describedBy, secondary) {
  const node = element("button", text, secondary ? "secondary" : "");
  node.type = "button";
  // The item's name describes the button, so "I consent" says to what.
  node.setAttribute("aria-describedby", describedBy);
  node.addEventListener("click", onClick);
  return node;
}

function fill(list, items, renderItem, emptyText) {
  list.replaceChildren();
  if (!items.length) {
    list.append(element("li", emptyText, "empty"));
    return;
  }
  for (const item of items) list.append(renderItem(item));
}

function itemName(item, text) {
  const name = element("p", text, "item-name");
  name.id = `name-${item.id}`;
  return name;
}

function itemState(words, state) {
  return element("p", words[state] || state, "item-state");
}

function actionItem(task, act) {
  const item = element("li");
  item.append(itemName(task, task.name || "Action"), itemState(ACTION_STATES, task.state));
  if (OPEN_ACTIONS.has(task.state)) {
    const row = element("div", null, "buttons");
    row.append(button("Mark as done", (event) => act.completeAction(event, task), `name-${task.id}`));
    item.append(row);
  }
  return item;
}

function consentItem(consent, act) {
  const item = element("li");
  item.append(itemName(consent, consent.text || "Consent"), itemState(CONSENT_STATES, consent.state));
  if (consent.state === "REQUESTED") {
    const row = element("div", null, "buttons");
    row.append(button("I consent", (event) => act.giveConsent(event, consent, true), `name-${consent.id}`),
      button("I do not consent", (event) => act.giveConsent(event, consent, false), `name-${consent.id}`, true));
    item.append(row);
  }
  return item;
}

function documentItem(doc, participantId, act) {
  const item = element("li");
  const own = doc.participantId === participantId;
  item.append(itemName(doc, doc.name), itemState(DOCUMENT_STATES, doc.status));
  if (!own) item.append(element("p", "Shared with everyone in the case.", "hint"));
  if (own && !SETTLED_DOCUMENTS.has(doc.status)) {
    const upload = element("div", null, "upload");
    const input = element("input");
    input.type = "file";
    input.id = `file-${doc.id}`;
    input.accept = UPLOAD_TYPES;
    const label = element("label", `Choose the file for ${doc.name}`);
    label.htmlFor = input.id;
    upload.append(label, input,
      button("Send the file", (event) => act.uploadDocument(event, doc, input), `name-${doc.id}`));
    item.append(upload);
  }
  return item;
}

function historyItem(entry) {
  const item = element("li");
  const time = element("time", when.format(new Date(entry.at)));
  time.dateTime = entry.at;
  item.append(time, element("span", entry.summary));
  return item;
}

/** Draws `panelCase` for `participantId`; `act` has completeAction, giveConsent and uploadDocument handlers. */
export function renderCase(panelCase, participantId, act) {
  document.title = `${panelCase.title} – Customer Panel`;
  $("case-title").textContent = panelCase.title;
  $("case-product").textContent = panelCase.product || "";
  $("signed-in-as").textContent = `Signed in as ${panelCase.participant.name}, case ${panelCase.caseId}.`;
  $("status-text").textContent = panelCase.statusText;
  $("stage-text").textContent = panelCase.stageText || "—";
  $("available-until-row").hidden = !panelCase.availableUntil;
  $("available-until").textContent = panelCase.availableUntil ? day.format(new Date(panelCase.availableUntil)) : "";

  fill($("next-steps"), panelCase.nextSteps, (step) => element("li", step), "Nothing for you to do right now.");
  fill($("actions"), panelCase.actions, (task) => actionItem(task, act), "You have no open actions.");
  fill($("consents"), panelCase.consents, (consent) => consentItem(consent, act),
    "The bank has asked you for no consents.");
  fill($("documents"), panelCase.documents, (doc) => documentItem(doc, participantId, act),
    "There are no documents for you in this case.");
  fill($("others"), panelCase.others, (other) => element("li", other.summary), "You are the only participant.");
  fill($("history"), panelCase.history.edges.map((edge) => edge.node), historyItem, "Nothing yet.");

  const faq = $("faq");
  faq.replaceChildren();
  for (const entry of panelCase.faq) {
    const details = element("details");
    details.append(element("summary", entry.question), element("p", entry.answer));
    faq.append(details);
  }
}
