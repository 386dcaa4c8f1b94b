// How the Customer Panel page talks to the API: the GraphQL operations it uses, and the session token, which lives
// only in this module's memory (never in the URL, a cookie or storage, so reloading the page forgets it; the
// server's idle timeout ends the session itself).

const GRAPHQL = "/graphql";

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

let token = null;

export class PanelError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

async function send(body, headers) {
  if (token) headers.Authorization = `Bearer ${token}`;
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

export function uploadDocument(documentId, file) {
  // The GraphQL multipart request spec; the preflight header is what the server asks of every upload (CSRF).
  const form = new FormData();
  form.append("operations", JSON.stringify({ query: UPLOAD_DOCUMENT, variables: { documentId, file: null } }));
  form.append("map", JSON.stringify({ 0: ["variables.file"] }));
  form.append("0", file, file.name);
  return send(form, { "Apollo-Require-Preflight": "true" });
}

export function requestCode(caseId, peselFragment) {
  return graphql(REQUEST_CODE, { caseId, peselFragment });
}

/** Signs in; keeps the session token here and returns the participant ({id, name}). */
export async function logIn(caseId, peselFragment, otp) {
  const data = await graphql(LOGIN, { caseId, peselFragment, otp });
  token = data.panelLogin.token;
  return data.panelLogin.participant;
}

/** Ends the session on the server; the token is forgotten here whatever the answer. */
export async function logOut() {
  try {
    await graphql(LOGOUT);
  } finally {
    token = null;
  }
}

export function forgetSession() {
  token = null;
}

export async function panelCase() {
  return (await graphql(PANEL_CASE)).panelCase;
}

export function giveConsent(consentId, granted) {
  return graphql(GIVE_CONSENT, { consentId, granted });
}

export function completeAction(taskId) {
  return graphql(COMPLETE_ACTION, { taskId, input: null });
}

function sentence(text) {
  const trimmed = (text || "").trim();
  if (!trimmed) return "";
  const capital = trimmed[0].toUpperCase() + trimmed.slice(1);
  return /[.!?]$/.test(capital) ? capital : `${capital}.`;
}

export function customerMessage(error) {
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
