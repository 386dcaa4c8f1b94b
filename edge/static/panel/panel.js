// The Customer Panel page: sign in to one case with the case number, the last 4 PESEL digits and the SMS code,
// then see and answer what the bank asks of you. The session token lives only in this script's memory: never in
// the URL, a cookie or storage, so closing or reloading the tab ends what the page knows (the server's idle
// timeout ends the session itself). Everything shown is written with textContent, never as HTML.
"use strict";

(() => {
  const GRAPHQL = "/graphql";
  const UPLOAD_LIMIT_BYTES = 10 * 1024 * 1024; // the server's default PANEL_UPLOAD_MAX_BYTES; the server decides
  const UPLOAD_TYPES = "application/pdf,image/jpeg,image/png,.pdf,.jpg,.jpeg,.png";

  const REQUEST_CODE = `mutation RequestCode($caseId: ID!, $peselFragment: String!) {
    panelRequestCode(caseId: $caseId, peselFragment: $peselFragment) }`;
  const LOGIN = `mutation Login($caseId: ID!, $peselFragment: String!, $otp: String!) {
    panelLogin(caseId: $caseId, peselFragment: $peselFragment, otp: $otp) {
      token expiresAt participant { id name } } }`;
  const LOGOUT = "mutation Logout { panelLogout }";
  const PANEL_CASE = `query PanelCase { panelCase {
    caseId title product statusText stageText nextSteps availableUntil participant { id name }
    actions { id name state } consents { id text state } documents { id name status participantId }
    others { summary } faq { question answer } history(first: 20) { edges { node { id at summary } } } } }`;
  const GIVE_CONSENT = `mutation GiveConsent($consentId: ID!, $granted: Boolean!) {
    panelGiveConsent(consentId: $consentId, granted: $granted) { id state } }`;
  const COMPLETE_ACTION = `mutation CompleteAction($taskId: ID!, $input: JSON) {
    panelCompleteAction(taskId: $taskId, input: $input) { id state } }`;
  const UPLOAD_DOCUMENT = `mutation UploadDocument($documentId: ID!, $file: Upload!) {
    panelUploadDocument(documentId: $documentId, file: $file) { id status } }`;

  // Words for the states the API returns as codes; an unknown code is shown as it comes.
  const ACTION_STATES = { CREATED: "To do", COMPLETION_REQUESTED: "Done – the bank is processing it",
    COMPLETED: "Done", CANCELLED: "No longer needed" };
  const CONSENT_STATES = { REQUESTED: "Waiting for your answer", GRANTED: "You consented",
    DECLINED: "You did not consent" };
  const DOCUMENT_STATES = { MISSING: "Waiting for you to send it", REQUESTED: "Waiting for you to send it",
    REJECTED: "The bank could not accept it – please send it again", ORDERED: "Ordered by the bank",
    UPLOADED: "Sent – the bank will check it", RECEIVED: "Received by the bank", ACCEPTED: "Accepted",
    VERIFIED: "Accepted" };
  // A participant may send (or send again) their own documents until the bank has accepted them.
  const SETTLED_DOCUMENTS = new Set(["ACCEPTED", "VERIFIED"]);
  const OPEN_ACTIONS = new Set(["CREATED", "ASSIGNED"]);

  const session = { token: null, caseId: null, peselFragment: null, participantId: null };
  const $ = (id) => document.getElementById(id);

  class PanelError extends Error {
    constructor(code, message) {
      super(message);
      this.code = code;
    }
  }

  // --- talking to the API -------------------------------------------------------------------------------------

  async function send(body, headers) {
    if (session.token) headers.Authorization = `Bearer ${session.token}`;
    let response;
    try {
      response = await fetch(GRAPHQL, { method: "POST", headers, body, credentials: "omit", cache: "no-store" });
    } catch (networkError) {
      throw new PanelError("NETWORK", "We could not reach the bank. Check your connection and try again.");
    }
    let answer;
    try {
      answer = await response.json();
    } catch (notJson) {
      throw new PanelError("INTERNAL", "");
    }
    if (answer.errors && answer.errors.length) {
      const first = answer.errors[0];
      throw new PanelError((first.extensions && first.extensions.code) || "INTERNAL", first.message || "");
    }
    return answer.data;
  }

  function graphql(query, variables = {}) {
    return send(JSON.stringify({ query, variables }), { "Content-Type": "application/json" });
  }

  function uploadFile(documentId, file) {
    // The GraphQL multipart request spec; the preflight header is what the server asks of every upload (CSRF).
    const form = new FormData();
    form.append("operations", JSON.stringify({ query: UPLOAD_DOCUMENT, variables: { documentId, file: null } }));
    form.append("map", JSON.stringify({ 0: ["variables.file"] }));
    form.append("0", file, file.name);
    return send(form, { "Apollo-Require-Preflight": "true" });
  }

  function sentence(text) {
    const trimmed = (text || "").trim();
    if (!trimmed) return "";
    const capital = trimmed[0].toUpperCase() + trimmed.slice(1);
    return /[.!?]$/.test(capital) ? capital : `${capital}.`;
  }

  function customerMessage(error) {
    if (error.code === "NETWORK") return error.message;
    if (error.code === "UNAUTHENTICATED") {
      return "The case number, the PESEL digits or the code is not right, or the code has expired. " +
        "Check them, or ask for a new code.";
    }
    if (["RATE_LIMITED", "FORBIDDEN", "BAD_USER_INPUT", "CONFLICT", "NOT_FOUND"].includes(error.code)) {
      return sentence(error.message) || "The bank could not do this.";
    }
    return "Something went wrong on our side. Please try again in a few minutes.";
  }

  // --- messages, errors and focus -----------------------------------------------------------------------------

  function say(element, text) {
    // Emptied first so that the same words said twice are announced twice by screen readers.
    element.textContent = "";
    if (!text) return Promise.resolve();
    return new Promise((resolve) => window.setTimeout(() => { element.textContent = text; resolve(); }, 50));
  }

  function markField(input, errorElement, message) {
    errorElement.textContent = message;
    if (message) input.setAttribute("aria-invalid", "true");
    else input.removeAttribute("aria-invalid");
  }

  function checkFields(checks, summary) {
    let firstWrong = null;
    for (const [input, errorElement, ok, message] of checks) {
      markField(input, errorElement, ok ? "" : message);
      if (!ok && firstWrong === null) firstWrong = input;
    }
    if (firstWrong !== null) {
      say(summary, "Please correct the field marked below.");
      firstWrong.focus();
      return false;
    }
    return true;
  }

  async function whileBusy(button, work) {
    button.disabled = true;
    button.setAttribute("aria-busy", "true");
    try {
      return await work();
    } finally {
      button.disabled = false;
      button.removeAttribute("aria-busy");
    }
  }

  // --- sign-in ------------------------------------------------------------------------------------------------

  const caseInput = () => $("case-id");
  const digitsInput = () => $("pesel-digits");
  const otpInput = () => $("otp");

  async function requestCode(event) {
    event.preventDefault();
    const caseId = caseInput().value.trim().toUpperCase();
    const digits = digitsInput().value.trim();
    say($("sign-in-status"), "");
    say($("sign-in-error"), "");
    const valid = checkFields([
      [caseInput(), $("case-id-error"), caseId.length > 0, "Enter the case number from your SMS or letter."],
      [digitsInput(), $("pesel-digits-error"), /^[0-9]{4}$/.test(digits), "Enter the last 4 digits of your PESEL."],
    ], $("sign-in-error"));
    if (!valid) return;
    try {
      await whileBusy(event.submitter || $("request-code-form").querySelector("button"),
        () => graphql(REQUEST_CODE, { caseId, peselFragment: digits }));
    } catch (error) {
      say($("sign-in-error"), customerMessage(error));
      return;
    }
    session.caseId = caseId;
    session.peselFragment = digits;
    $("request-code-form").hidden = true;
    $("login-form").hidden = false;
    otpInput().value = "";
    markField(otpInput(), $("otp-error"), "");
    say($("sign-in-status"), "If these details belong to a participant of the case, we have sent a code by SMS " +
      "to their phone. Enter it below.");
    otpInput().focus();
  }

  async function sendNewCode(event) {
    say($("sign-in-error"), "");
    try {
      await whileBusy(event.currentTarget,
        () => graphql(REQUEST_CODE, { caseId: session.caseId, peselFragment: session.peselFragment }));
    } catch (error) {
      say($("sign-in-error"), customerMessage(error));
      return;
    }
    say($("sign-in-status"), "We have sent a new code. The previous one no longer works.");
    otpInput().value = "";
    otpInput().focus();
  }

  function changeDetails() {
    say($("sign-in-status"), "");
    say($("sign-in-error"), "");
    $("login-form").hidden = true;
    $("request-code-form").hidden = false;
    caseInput().focus();
  }

  async function logIn(event) {
    event.preventDefault();
    const otp = otpInput().value.replace(/\s+/g, "");
    say($("sign-in-error"), "");
    const valid = checkFields([[otpInput(), $("otp-error"), /^[0-9]{6}$/.test(otp),
      "Enter the 6 digits of the code from the SMS."]], $("sign-in-error"));
    if (!valid) return;
    let signedIn;
    try {
      signedIn = await whileBusy(event.submitter || $("login-form").querySelector("button[type=submit]"),
        () => graphql(LOGIN, { caseId: session.caseId, peselFragment: session.peselFragment, otp }));
    } catch (error) {
      const message = customerMessage(error);
      markField(otpInput(), $("otp-error"), error.code === "UNAUTHENTICATED" ? "This code did not work." : "");
      say($("sign-in-error"), message);
      otpInput().select();
      otpInput().focus();
      return;
    }
    session.token = signedIn.panelLogin.token;
    session.participantId = signedIn.panelLogin.participant.id;
    session.peselFragment = null; // not needed once signed in
    otpInput().value = "";
    say($("sign-in-status"), "");
    await showCase({ firstTime: true });
  }

  function forget() {
    session.token = null;
    session.caseId = null;
    session.peselFragment = null;
    session.participantId = null;
  }

  function showSignIn(message, isError) {
    forget();
    for (const id of ["case-id", "pesel-digits", "otp"]) $(id).value = "";
    $("case-view").hidden = true;
    $("sign-out").hidden = true;
    $("sign-in").hidden = false;
    $("login-form").hidden = true;
    $("request-code-form").hidden = false;
    document.title = "Customer Panel – sign in to your case";
    say($("sign-in-error"), isError ? message : "");
    say($("sign-in-status"), isError ? "" : message);
    $("sign-in-title").focus();
  }

  async function signOut(event) {
    try {
      await whileBusy(event.currentTarget, () => graphql(LOGOUT));
    } catch (error) {
      // An ended session is signed out already; anything else still forgets the token here.
    }
    showSignIn("You are signed out. You can close this page.", false);
  }

  function sessionEnded() {
    showSignIn("Your session has ended. Please sign in again.", true);
  }

  // --- the case -----------------------------------------------------------------------------------------------

  async function showCase({ firstTime = false, message = "" } = {}) {
    let data;
    try {
      data = await graphql(PANEL_CASE);
    } catch (error) {
      if (error.code === "UNAUTHENTICATED") return sessionEnded();
      if (firstTime) {
        showSignIn(customerMessage(error), true);
      } else {
        say($("case-error"), customerMessage(error));
      }
      return;
    }
    render(data.panelCase);
    $("sign-in").hidden = true;
    $("case-view").hidden = false;
    $("sign-out").hidden = false;
    say($("case-error"), "");
    if (firstTime) {
      $("case-title").focus();
    } else {
      await say($("case-status"), message);
      if (message) $("case-status").focus();
    }
  }

  function element(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = text;
    if (className) node.className = className;
    return node;
  }

  function button(text, onClick, describedBy, secondary) {
    const node = element("button", text, secondary ? "secondary" : "");
    node.type = "button";
    if (describedBy) node.setAttribute("aria-describedby", describedBy);
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

  function itemHeading(item, text) {
    const name = element("p", text, "item-name");
    name.id = `name-${item.id}`;
    return name;
  }

  const when = new Intl.DateTimeFormat("en-GB", { dateStyle: "medium", timeStyle: "short", timeZone: "Europe/Warsaw" });
  const day = new Intl.DateTimeFormat("en-GB", { dateStyle: "long", timeZone: "Europe/Warsaw" });

  function render(panelCase) {
    document.title = `${panelCase.title} – Customer Panel`;
    $("case-title").textContent = panelCase.title;
    $("case-product").textContent = panelCase.product || "";
    $("signed-in-as").textContent = `Signed in as ${panelCase.participant.name}, case ${panelCase.caseId}.`;
    $("status-text").textContent = panelCase.statusText;
    $("stage-text").textContent = panelCase.stageText || "—";
    $("available-until-row").hidden = !panelCase.availableUntil;
    $("available-until").textContent = panelCase.availableUntil ? day.format(new Date(panelCase.availableUntil)) : "";

    fill($("next-steps"), panelCase.nextSteps, (step) => element("li", step), "Nothing for you to do right now.");
    fill($("actions"), panelCase.actions, renderAction, "You have no open actions.");
    fill($("consents"), panelCase.consents, renderConsent, "The bank has asked you for no consents.");
    fill($("documents"), panelCase.documents, renderDocument, "There are no documents for you in this case.");
    fill($("others"), panelCase.others, (other) => element("li", other.summary), "You are the only participant.");
    fill($("history"), panelCase.history.edges.map((edge) => edge.node), renderHistory, "Nothing yet.");

    const faq = $("faq");
    faq.replaceChildren();
    for (const entry of panelCase.faq) {
      const details = element("details");
      details.append(element("summary", entry.question), element("p", entry.answer));
      faq.append(details);
    }
  }

  function renderAction(task) {
    const item = element("li");
    item.append(itemHeading(task, task.name || "Action"),
      element("p", ACTION_STATES[task.state] || task.state, "item-state"));
    if (OPEN_ACTIONS.has(task.state)) {
      const row = element("div", null, "buttons");
      row.append(button("Mark as done", (event) => completeAction(event, task), `name-${task.id}`));
      item.append(row);
    }
    return item;
  }

  function renderConsent(consent) {
    const item = element("li");
    item.append(itemHeading(consent, consent.text || "Consent"),
      element("p", CONSENT_STATES[consent.state] || consent.state, "item-state"));
    if (consent.state === "REQUESTED") {
      const row = element("div", null, "buttons");
      row.append(button("I consent", (event) => giveConsent(event, consent, true), `name-${consent.id}`),
        button("I do not consent", (event) => giveConsent(event, consent, false), `name-${consent.id}`, true));
      item.append(row);
    }
    return item;
  }

  function renderDocument(doc) {
    const item = element("li");
    const own = doc.participantId === session.participantId;
    item.append(itemHeading(doc, doc.name), element("p", DOCUMENT_STATES[doc.status] || doc.status, "item-state"));
    if (!own) item.append(element("p", "Shared with everyone in the case.", "hint"));
    if (own && !SETTLED_DOCUMENTS.has(doc.status)) {
      const form = element("div", null, "upload");
      const input = element("input");
      input.type = "file";
      input.id = `file-${doc.id}`;
      input.accept = UPLOAD_TYPES;
      const label = element("label", `Choose the file for ${doc.name}`);
      label.htmlFor = input.id;
      const send = button("Send the file", (event) => uploadDocument(event, doc, input), `name-${doc.id}`);
      form.append(label, input, send);
      item.append(form);
    }
    return item;
  }

  function renderHistory(entry) {
    const item = element("li");
    const time = element("time", when.format(new Date(entry.at)));
    time.dateTime = entry.at;
    item.append(time, element("span", entry.summary));
    return item;
  }

  // --- what the participant does ------------------------------------------------------------------------------

  async function act(trigger, work, thanks) {
    say($("case-error"), "");
    try {
      await whileBusy(trigger, work);
    } catch (error) {
      if (error.code === "UNAUTHENTICATED") return sessionEnded();
      say($("case-error"), customerMessage(error));
      return;
    }
    await showCase({ message: thanks });
  }

  function giveConsent(event, consent, granted) {
    return act(event.currentTarget, () => graphql(GIVE_CONSENT, { consentId: consent.id, granted }),
      granted ? "Thank you: your consent is recorded." : "Your answer is recorded: you do not consent.");
  }

  function completeAction(event, task) {
    return act(event.currentTarget, () => graphql(COMPLETE_ACTION, { taskId: task.id, input: null }),
      `Thank you: the bank has been told that “${task.name || "the action"}” is done.`);
  }

  function uploadDocument(event, doc, input) {
    const file = input.files && input.files[0];
    if (!file) {
      say($("case-error"), `Choose a file for ${doc.name} first.`);
      input.focus();
      return undefined;
    }
    if (file.size > UPLOAD_LIMIT_BYTES) {
      say($("case-error"), `${file.name} is larger than 10 MB. Please send a smaller file.`);
      input.focus();
      return undefined;
    }
    return act(event.currentTarget, () => uploadFile(doc.id, file),
      `Thank you: we received ${file.name} for ${doc.name}.`);
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("request-code-form").addEventListener("submit", requestCode);
    $("login-form").addEventListener("submit", logIn);
    $("new-code").addEventListener("click", sendNewCode);
    $("change-details").addEventListener("click", changeDetails);
    $("sign-out").addEventListener("click", signOut);
  });
})();
