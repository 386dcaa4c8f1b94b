// The Customer Panel page: sign in to one case with the case number, the last 4 PESEL digits and the SMS code,
// then see and answer what the bank asks of you. Messages go to live regions (role="status" / role="alert") and
// focus moves to what changed, so a screen reader or keyboard user follows every step.
import * as api from "/panel/api.js";
import { renderCase } from "/panel/case-view.js";

const UPLOAD_LIMIT_BYTES = 10 * 1024 * 1024; // the server's default PANEL_UPLOAD_MAX_BYTES; the server decides

// What the page remembers between steps, in memory only; the token itself stays inside api.js.
const signIn = { caseId: null, peselFragment: null, participantId: null };
const $ = (id) => document.getElementById(id);
const caseInput = () => $("case-id");
const digitsInput = () => $("pesel-digits");
const otpInput = () => $("otp");

// --- messages, errors and focus ---------------------------------------------------------------------------------

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

function checkFields(checks) {
  let firstWrong = null;
  for (const [input, errorElement, ok, message] of checks) {
    markField(input, errorElement, ok ? "" : message);
    if (!ok && firstWrong === null) firstWrong = input;
  }
  if (firstWrong === null) return true;
  say($("sign-in-error"), "Please correct the field marked below.");
  firstWrong.focus();
  return false;
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

// --- sign-in ----------------------------------------------------------------------------------------------------

async function requestCode(event) {
  event.preventDefault();
  const caseId = caseInput().value.trim().toUpperCase();
  const digits = digitsInput().value.trim();
  say($("sign-in-status"), "");
  say($("sign-in-error"), "");
  const valid = checkFields([
    [caseInput(), $("case-id-error"), caseId.length > 0, "Enter the case number from your SMS or letter."],
    [digitsInput(), $("pesel-digits-error"), /^[0-9]{4}$/.test(digits), "Enter the last 4 digits of your PESEL."],
  ]);
  if (!valid) return;
  try {
    await whileBusy(event.submitter || $("request-code-form").querySelector("button"),
      () => api.requestCode(caseId, digits));
  } catch (error) {
    say($("sign-in-error"), api.customerMessage(error));
    return;
  }
  signIn.caseId = caseId;
  signIn.peselFragment = digits;
  $("request-code-form").hidden = true;
  $("login-form").hidden = false;
  otpInput().value = "";
  markField(otpInput(), $("otp-error"), "");
  // The same words whether or not anyone matched: the page must not tell who is a participant.
  say($("sign-in-status"), "If these details belong to a participant of the case, we have sent a code by SMS " +
    "to their phone. Enter it below.");
  otpInput().focus();
}

async function sendNewCode(event) {
  say($("sign-in-error"), "");
  try {
    await whileBusy(event.currentTarget, () => api.requestCode(signIn.caseId, signIn.peselFragment));
  } catch (error) {
    say($("sign-in-error"), api.customerMessage(error));
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
    "Enter the 6 digits of the code from the SMS."]]);
  if (!valid) return;
  let participant;
  try {
    participant = await whileBusy(event.submitter || $("login-form").querySelector("button[type=submit]"),
      () => api.logIn(signIn.caseId, signIn.peselFragment, otp));
  } catch (error) {
    markField(otpInput(), $("otp-error"), error.code === "UNAUTHENTICATED" ? "This code did not work." : "");
    say($("sign-in-error"), api.customerMessage(error));
    otpInput().select(); // typing the right code replaces the wrong one
    otpInput().focus();
    return;
  }
  signIn.participantId = participant.id;
  signIn.peselFragment = null; // not needed once signed in
  otpInput().value = "";
  say($("sign-in-status"), "");
  await showCase({ firstTime: true });
}

function showSignIn(message, isError) {
  api.forgetSession();
  Object.assign(signIn, { caseId: null, peselFragment: null, participantId: null });
  for (const input of [caseInput(), digitsInput(), otpInput()]) input.value = "";
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
    await whileBusy(event.currentTarget, () => api.logOut());
  } catch (error) {
    // An ended session is signed out already; the token is forgotten either way.
  }
  showSignIn("You are signed out. You can close this page.", false);
}

function sessionEnded() {
  showSignIn("Your session has ended. Please sign in again.", true);
}

// --- the case and what the participant does ---------------------------------------------------------------------

async function showCase({ firstTime = false, message = "" } = {}) {
  let panelCase;
  try {
    panelCase = await api.panelCase();
  } catch (error) {
    if (error.code === "UNAUTHENTICATED") return sessionEnded();
    if (firstTime) showSignIn(api.customerMessage(error), true);
    else say($("case-error"), api.customerMessage(error));
    return;
  }
  renderCase(panelCase, signIn.participantId, actions);
  $("sign-in").hidden = true;
  $("case-view").hidden = false;
  $("sign-out").hidden = false;
  say($("case-error"), "");
  if (firstTime) {
    $("case-title").focus();
  } else {
    // The item acted on is drawn anew, so focus goes to the confirmation rather than to nowhere.
    await say($("case-status"), message);
    if (message) $("case-status").focus();
  }
}

async function act(trigger, work, thanks) {
  say($("case-error"), "");
  try {
    await whileBusy(trigger, work);
  } catch (error) {
    if (error.code === "UNAUTHENTICATED") return sessionEnded();
    say($("case-error"), api.customerMessage(error));
    return;
  }
  await showCase({ message: thanks });
}

const actions = {
  giveConsent(event, consent, granted) {
    return act(event.currentTarget, () => api.giveConsent(consent.id, granted),
      granted ? "Thank you: your consent is recorded." : "Your answer is recorded: you do not consent.");
  },

  completeAction(event, task) {
    return act(event.currentTarget, () => api.completeAction(task.id),
      `Thank you: the bank has been told that “${task.name || "the action"}” is done.`);
  },

  uploadDocument(event, doc, input) {
    const file = input.files && input.files[0];
    if (!file || file.size > UPLOAD_LIMIT_BYTES) {
      say($("case-error"), file ? `${file.name} is larger than 10 MB. Please send a smaller file.`
        : `Choose a file for ${doc.name} first.`);
      input.focus();
      return undefined;
    }
    return act(event.currentTarget, () => api.uploadDocument(doc.id, file),
      `Thank you: we received ${file.name} for ${doc.name}.`);
  },
};

$("request-code-form").addEventListener("submit", requestCode);
$("login-form").addEventListener("submit", logIn);
$("new-code").addEventListener("click", sendNewCode);
$("change-details").addEventListener("click", changeDetails);
$("sign-out").addEventListener("click", signOut);
