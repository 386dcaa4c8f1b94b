"""The reference Customer Panel page (`GET /panel`) in headless chromium, as the co-borrowers of the demo mortgage use
it: sign in with the case number, the last 4 PESEL digits and the SMS code (read from the dev outbox), see their own
part of the case, give their consents, mark an action done, send a document (an executable renamed .pdf refused),
sign out; on a desktop and on a 360 px phone, with the keyboard only; axe-core finds nothing.

One server and one browser for the module: the demo state is shared, so each participant asks for at most three
codes here (the panel's limit per 15 minutes).
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.panel_browser import PanelServer, axe_violations, browser, keep_screenshot, panel_server

__all__ = ["browser", "panel_server"]  # fixtures, imported so that pytest finds them here

MORTGAGE = "CASE-2026-000123"
TITLE = "Mortgage 350,000 PLN – flat in Kraków"
PHONE = {"width": 360, "height": 740}
DESKTOP = {"width": 1280, "height": 900}
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
       "form-action 'none'; base-uri 'none'; frame-ancestors 'none'")
SENT = ("If these details belong to a participant of the case, we have sent a code by SMS to their phone. "
        "Enter it below.")
REFUSED = ("The case number, the PESEL digits or the code is not right, or the code has expired. "
           "Check them, or ask for a new code.")
NEXT_STEPS = ["Give the consents and send the documents listed here; each borrower does their own.",
              "The bank checks your income and orders the property valuation."]
CONSENT_ASKED = ("I consent to the bank checking my credit history in BIK.\nWaiting for your answer\n"
                 "I consent\nI do not consent")
FAQ = ["Why do I sign in to the case and not to internet banking?", "How long does the assessment take?",
       "My co-borrower has not finished yet. What can I do?"]


class Visit:
    """One browser context on the panel: what it requested and what its console said, checked at the end."""

    def __init__(self, server: PanelServer, page: Any) -> None:
        self.server, self.page = server, page
        self.requests: list[str] = []
        self.console_errors: list[str] = []
        page.on("request", lambda request: self.requests.append(request.url))
        page.on("console", lambda message: message.type == "error" and self.console_errors.append(message.text))

    def open(self) -> None:
        response = self.page.goto(self.server.base + "/panel")
        assert response.status == 200

    def sign_in(self, participant_id: str, digits: str) -> str:
        """The whole sign-in with the mouse; returns the session token the page received (for checks after)."""
        page = self.page
        page.get_by_label("Case number").fill(MORTGAGE)
        page.get_by_label("Last 4 digits of your PESEL").fill(digits)
        known = len(self.server.codes(participant_id))
        page.get_by_role("button", name="Send me a code").click()
        expect(page.locator("#sign-in-status")).to_have_text(SENT)
        expect(page.get_by_label("Code from the SMS")).to_be_focused()
        page.get_by_label("Code from the SMS").fill(self.server.new_code(participant_id, known))
        with page.expect_response(lambda r: r.url.endswith("/graphql") and "panelLogin" in (r.request.post_data or "")
                                  ) as login:
            page.get_by_role("button", name="Sign in").click()
        expect(page.locator("#case-title")).to_have_text(TITLE)
        expect(page.locator("#case-title")).to_be_focused()
        return login.value.json()["data"]["panelLogin"]["token"]

    def sign_out(self, token: str) -> None:
        self.page.get_by_role("button", name="Sign out").click()
        expect(self.page.locator("#sign-in-status")).to_have_text("You are signed out. You can close this page.")
        expect(self.page.locator("#sign-in-title")).to_be_focused()
        # The server ended the session too: the token the page held is refused from now on.
        assert self.server.graphql("{ panelCase { caseId } }", token) == (401, {"errors": [{
            "message": "invalid token: the panel session ended; sign in again",
            "extensions": {"code": "UNAUTHENTICATED"}}]})

    def texts(self, selector: str) -> list[str]:
        """What a reader sees in each match, one line a block (innerText leaves blank lines around paragraphs)."""
        return [re.sub(r"\n+", "\n", text) for text in self.page.locator(selector).all_inner_texts()]

    def assert_kept_to_itself(self) -> None:
        """Only this server was asked for anything, the token never reached the URL or storage, no CSP refusals."""
        assert [url for url in self.requests if not url.startswith(self.server.base + "/")] == []
        assert self.page.url == self.server.base + "/panel"
        assert self.page.evaluate("() => [sessionStorage.length, localStorage.length, document.cookie]") == [0, 0, ""]
        assert self.console_errors == []


@pytest.fixture
def desktop(panel_server: PanelServer, browser: Any) -> Iterator[Visit]:
    context = browser.new_context(viewport=DESKTOP)
    yield Visit(panel_server, context.new_page())
    context.close()


@pytest.fixture
def phone(panel_server: PanelServer, browser: Any) -> Iterator[Visit]:
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    yield Visit(panel_server, context.new_page())
    context.close()


def test_the_page_and_its_assets_are_served_locally_under_a_strict_policy(panel_server: PanelServer) -> None:
    import urllib.request
    with urllib.request.urlopen(panel_server.base + "/panel") as response:
        headers = response.headers
        assert (response.status, headers["Content-Type"]) == (200, "text/html; charset=utf-8")
    assert headers["Content-Security-Policy"] == CSP
    assert (headers["X-Frame-Options"], headers["Referrer-Policy"], headers["X-Content-Type-Options"]) == (
        "DENY", "no-referrer", "nosniff")
    served = ("/panel/panel.js", "/panel/api.js", "/panel/case-view.js", "/panel/panel.css", "/panel/favicon.svg")
    assert [panel_server.status(path) for path in served] == [200] * 5
    assert [panel_server.status(path) for path in ("/panel/index.html", "/panel/../server.py", "/panel/")] == [404] * 3


def test_anna_signs_in_sees_her_part_and_signs_out(desktop: Visit) -> None:
    page = desktop.page
    desktop.open()
    assert page.title() == "Customer Panel – sign in to your case"
    assert axe_violations(page) == []
    token = desktop.sign_in("P-1", "7819")

    assert page.title() == f"{TITLE} – Customer Panel"
    assert page.locator("#case-product").inner_text() == "Mortgage, 5-year fixed rate"
    assert page.locator("#signed-in-as").inner_text() == "Signed in as Anna Kowalska, case CASE-2026-000123."
    assert desktop.texts(".facts > div:not([hidden])") == [
        "Status\nIn progress", "Stage\nThe bank is assessing the application"]
    assert desktop.texts("#next-steps li") == NEXT_STEPS
    assert desktop.texts("#actions > li") == ["Confirm your employment details\nTo do\nMark as done"]
    assert desktop.texts("#consents > li") == [CONSENT_ASKED]
    assert desktop.texts("#documents > li") == [
        "Income statement – Anna\nReceived by the bank\nChoose the file for Income statement – Anna\nSend the file",
        "Property valuation\nOrdered by the bank\nShared with everyone in the case."]
    assert desktop.texts("#others li") == [
        "The co-borrower still has consents to give, documents to send and actions to complete"]
    assert desktop.texts("#history li") == [
        "2 Nov 2026, 18:00\nThe bank asked for your consent",
        "2 Nov 2026, 17:30\nNew action for you: Confirm your employment details",
        "2 Nov 2026, 13:30\nStatus: In progress – The bank is assessing the application",
        "2 Nov 2026, 13:00\nDocument: Property valuation",
        "2 Nov 2026, 12:00\nDocument: Income statement – Anna",
        "2 Nov 2026, 10:30\nYour case was opened"]
    assert desktop.texts("#faq summary") == FAQ
    # Nothing of the co-borrower: not their name, their document or their action.
    body = page.locator("body").inner_text()
    assert ("Piotr" in body, "Upload income statement" in body) == (False, False)
    assert axe_violations(page) == []
    keep_screenshot(page, "panel-anna-desktop")

    desktop.sign_out(token)
    desktop.assert_kept_to_itself()


def test_piotr_on_a_phone_sees_his_part_without_scrolling_sideways(phone: Visit) -> None:
    page = phone.page
    phone.open()
    assert page.evaluate("document.documentElement.scrollWidth") == 360
    assert axe_violations(page) == []
    keep_screenshot(page, "panel-sign-in-phone")
    token = phone.sign_in("P-2", "2344")

    assert page.locator("#signed-in-as").inner_text() == "Signed in as Piotr Nowak, case CASE-2026-000123."
    assert phone.texts(".facts dd:visible") == ["In progress", "The bank is assessing the application"]
    assert phone.texts("#next-steps li") == NEXT_STEPS
    assert phone.texts("#actions > li") == ["Upload income statement\nTo do\nMark as done"]
    assert phone.texts("#consents > li") == [CONSENT_ASKED]
    assert phone.texts("#documents > li") == [
        "Income statement – Piotr\nWaiting for you to send it\nChoose the file for Income statement – Piotr\n"
        "Send the file",
        "Property valuation\nOrdered by the bank\nShared with everyone in the case."]
    assert phone.texts("#others li") == ["The borrower still has consents to give and actions to complete"]
    assert page.get_by_label("Choose the file for Income statement – Piotr").is_visible()
    body = page.locator("body").inner_text()
    assert ("Anna" in body, "Confirm your employment details" in body) == (False, False)
    assert page.evaluate("document.documentElement.scrollWidth") == 360
    assert axe_violations(page) == []
    keep_screenshot(page, "panel-piotr-phone")

    phone.sign_out(token)
    phone.assert_kept_to_itself()


def _focus_ring(page: Any) -> list[str]:
    return page.evaluate("() => { const s = getComputedStyle(document.activeElement); "
                         "return [s.outlineStyle, s.outlineWidth]; }")


def test_anna_signs_in_and_out_with_the_keyboard_only(desktop: Visit) -> None:
    page, keyboard = desktop.page, desktop.page.keyboard
    desktop.open()
    keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to the content")).to_be_focused()
    keyboard.press("Tab")
    expect(page.get_by_label("Case number")).to_be_focused()
    assert _focus_ring(page) == ["solid", "3px"]
    keyboard.type(MORTGAGE)
    keyboard.press("Tab")
    expect(page.get_by_label("Last 4 digits of your PESEL")).to_be_focused()
    keyboard.type("7819")
    known = len(desktop.server.codes("P-1"))
    keyboard.press("Enter")
    expect(page.get_by_label("Code from the SMS")).to_be_focused()
    code = desktop.server.new_code("P-1", known)

    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    keyboard.type(wrong)
    keyboard.press("Enter")
    expect(page.get_by_role("alert").filter(has_text="not right")).to_have_text(REFUSED)
    expect(page.get_by_label("Code from the SMS")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#otp-error")).to_have_text("This code did not work.")
    expect(page.get_by_label("Code from the SMS")).to_be_focused()

    keyboard.type(code)  # the wrong code is selected, so typing replaces it
    keyboard.press("Enter")
    expect(page.locator("#case-title")).to_be_focused()
    keyboard.press("Shift+Tab")
    expect(page.get_by_role("button", name="Sign out")).to_be_focused()
    assert _focus_ring(page) == ["solid", "3px"]
    keyboard.press("Enter")
    expect(page.locator("#sign-in-title")).to_be_focused()
    expect(page.locator("#sign-in-status")).to_have_text("You are signed out. You can close this page.")
    desktop.assert_kept_to_itself()


def test_missing_or_malformed_details_are_marked_and_announced_before_anything_is_sent(desktop: Visit) -> None:
    page = desktop.page
    desktop.open()
    page.get_by_label("Last 4 digits of your PESEL").fill("78a")
    page.get_by_role("button", name="Send me a code").click()
    expect(page.get_by_role("alert").filter(has_text="correct")).to_have_text("Please correct the field marked below.")
    expect(page.get_by_label("Case number")).to_be_focused()
    expect(page.locator("#case-id-error")).to_have_text("Enter the case number from your SMS or letter.")
    expect(page.locator("#pesel-digits-error")).to_have_text("Enter the last 4 digits of your PESEL.")
    assert [page.get_by_label(name).get_attribute("aria-invalid") for name in (
        "Case number", "Last 4 digits of your PESEL")] == ["true", "true"]
    assert axe_violations(page) == []
    assert [url for url in desktop.requests if url.endswith("/graphql")] == []
    desktop.assert_kept_to_itself()


PIOTR_PDF = b"%PDF-1.4\n% income statement, Piotr Nowak, 2026\n%%EOF\n"  # 53 bytes
PIOTR_PDF_SHA256 = "4941a6feeb591f6107dd9fc783fbb1cbc981396c64298591e1afdf73cc0e95e4"
EXECUTABLE = b"\x7fELF\x02\x01\x01\x00" + bytes(56)  # an ELF header, named .pdf below


def test_both_co_borrowers_act_in_parallel_through_the_page(desktop: Visit, phone: Visit) -> None:
    """Anna (desktop) consents and marks her action done; Piotr (phone) consents and sends his income statement,
    after the page refused an executable renamed .pdf. Each step reaches the process engine as its command."""
    anna, piotr = desktop.page, phone.page
    desktop.open()
    phone.open()
    anna_token = desktop.sign_in("P-1", "7819")
    piotr_token = phone.sign_in("P-2", "2344")

    anna.get_by_role("button", name="I consent").click()
    expect(anna.locator("#case-status")).to_have_text("Thank you: your consent is recorded.")
    expect(anna.locator("#case-status")).to_be_focused()
    assert desktop.texts("#consents > li") == ["I consent to the bank checking my credit history in BIK.\n"
                                               "You consented"]
    piotr.get_by_role("button", name="I consent").click()
    expect(piotr.locator("#case-status")).to_have_text("Thank you: your consent is recorded.")
    assert [{key: data[key] for key in ("caseId", "consentId", "participantId", "granted")}
            for data in desktop.server.commands("consent.recorded")] == [
        {"caseId": MORTGAGE, "consentId": "C-2", "participantId": "P-1", "granted": True},
        {"caseId": MORTGAGE, "consentId": "C-1", "participantId": "P-2", "granted": True}]

    anna.get_by_role("button", name="Mark as done").click()
    expect(anna.locator("#case-status")).to_have_text(
        "Thank you: the bank has been told that “Confirm your employment details” is done.")
    assert desktop.texts("#actions > li") == ["Confirm your employment details\nDone – the bank is processing it"]
    assert [(data["caseId"], data["taskId"]) for data in desktop.server.commands("task.completion_requested")] == [
        (MORTGAGE, "T-123-5")]

    upload = piotr.get_by_label("Choose the file for Income statement – Piotr")
    upload.set_input_files({"name": "income.pdf", "mimeType": "application/pdf", "buffer": EXECUTABLE})
    piotr.get_by_role("button", name="Send the file").click()
    expect(piotr.locator("#case-error")).to_have_text(
        "File: not a PDF, JPEG or PNG document (its content decides, not its name).")
    assert phone.server.commands("document.uploaded") == []
    upload.set_input_files({"name": "income-piotr.pdf", "mimeType": "application/pdf", "buffer": PIOTR_PDF})
    piotr.get_by_role("button", name="Send the file").click()
    expect(piotr.locator("#case-status")).to_have_text(
        "Thank you: we received income-piotr.pdf for Income statement – Piotr.")
    assert [{key: data[key] for key in ("caseId", "documentId", "participantId", "contentType", "size", "sha256")}
            for data in phone.server.commands("document.uploaded")] == [
        {"caseId": MORTGAGE, "documentId": "D-2", "participantId": "P-2", "contentType": "application/pdf",
         "size": 53, "sha256": PIOTR_PDF_SHA256}]
    assert phone.texts("#documents > li")[0] == ("Income statement – Piotr\nSent – the bank will check it\n"
                                                 "Choose the file for Income statement – Piotr\nSend the file")
    assert phone.texts("#history li")[:2] == [
        f"{phone.texts('#history time')[0]}\nDocument sent in the Customer Panel: Income statement – Piotr",
        f"{phone.texts('#history time')[1]}\nConsent given in the Customer Panel"]
    # Anna's action waits for the process engine's confirmation, so it still counts as open for Piotr.
    assert phone.texts("#others li") == ["The borrower still has actions to complete"]
    assert (axe_violations(anna), axe_violations(piotr)) == ([], [])
    keep_screenshot(piotr, "panel-piotr-phone-after-actions")

    desktop.sign_out(anna_token)
    phone.sign_out(piotr_token)
    desktop.assert_kept_to_itself()
    phone.assert_kept_to_itself()
