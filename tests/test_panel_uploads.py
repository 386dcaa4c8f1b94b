"""Uploads in the Customer Panel and their download (issue 9, CONTRACT §5), over HTTP with real sessions and tokens.

A participant sends the content of their own document as a GraphQL multipart request; its type is decided by its
bytes, its kind must be one the case type lets participants upload, its size within PANEL_UPLOAD_MAX_BYTES. The
content is kept in MongoDB in sealed chunks; an employee of the case's branch downloads the same bytes (audited),
another branch does not, nor does anyone without a token.
"""
from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import orjson
import pytest
from aiohttp import FormData
from aiohttp.test_utils import TestClient

from context import Services
from settings import Settings
from stores.database import Database
from tests.factories import PUBLISH_CASE_EVENT, bearer, envelope, publish_input
from tests.panel_flow import ANNA_DIGITS, MORTGAGE, PIOTR_DIGITS, post, signed_in

UPLOAD = """mutation ($id: ID!, $file: Upload!) { panelUploadDocument(documentId: $id, file: $file) {
  id name kind status participantId url contentType size sha256 } }"""
LIMIT = 3 * 1024 * 1024
PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\nPAYSLIP-OF-PIOTR-NOWAK 8500 PLN\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"ANNA-KOWALSKA-PAYSLIP" * 10
EXECUTABLE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"This program cannot be run in DOS mode"
PIOTR_SHA = hashlib.sha256(PDF).hexdigest()
ADVISOR = bearer(username="ewa.zielinska", roles=("advisor", "case-reader"), channel="BRANCH", branch="KRK-01")
WARSAW = bearer(username="jan.kowal", roles=("advisor", "case-reader"), channel="BRANCH", branch="WAW-01")
CALL_CENTER = bearer(username="marek.lis", roles=("call-center", "case-reader"), channel="CALL_CENTER")


@pytest.fixture
def settings() -> Settings:
    return Settings(demo_data=True, outbox_relay_seconds=3600.0, panel_answer_floor_seconds=0.0,
                    panel_upload_max_bytes=LIMIT)


async def upload(client: TestClient, headers: dict[str, str], document_id: str, content: bytes,
                 filename: str = "scan.pdf", content_type: str = "application/pdf") -> tuple[int, Any]:
    """POST /graphql as the GraphQL multipart request spec says: operations, map, then the file part."""
    form = FormData()
    form.add_field("operations", orjson.dumps({"query": UPLOAD, "variables": {"id": document_id, "file": None}})
                   .decode())
    form.add_field("map", '{"0": ["variables.file"]}')
    form.add_field("0", content, filename=filename, content_type=content_type)
    response = await client.post("/graphql", data=form, headers={**headers, "Apollo-Require-Preflight": "true"})
    body = await response.json()
    return response.status, body


def uploaded(document_id: str, name: str, participant: str, content_type: str, content: bytes) -> dict[str, Any]:
    return {"data": {"panelUploadDocument": {
        "id": document_id, "name": name, "kind": "INCOME_STATEMENT", "status": "UPLOADED",
        "participantId": participant, "url": None, "contentType": content_type, "size": len(content),
        "sha256": hashlib.sha256(content).hexdigest()}}}


async def commands(client: TestClient) -> list[dict[str, Any]]:
    sent = await (await client.get("/dev/commands", params={"type": "document.uploaded"})).json()
    return [{k: v for k, v in e.items() if k not in ("id", "time")} for e in sent]


def upload_command(document_id: str, participant: str, name: str, content_type: str, content: bytes) -> dict[str, Any]:
    return {"specversion": "1.0", "source": "case-repository", "type": "document.uploaded", "subject": MORTGAGE,
            "datacontenttype": "application/json",
            "data": {"caseId": MORTGAGE, "documentId": document_id, "participantId": participant, "name": name,
                     "contentType": content_type, "size": len(content),
                     "sha256": hashlib.sha256(content).hexdigest()}}


def code_of(body: dict[str, Any]) -> tuple[str, str]:
    [error] = body["errors"]
    return error["extensions"]["code"], error["message"]


async def chunks(database: Database) -> list[dict[str, Any]]:
    return await database.collection("document_contents").find().to_list(None)


async def download(client: TestClient, headers: dict[str, str], document_id: str = "D-2",
                   case_id: str = MORTGAGE) -> Any:
    return await client.get(f"/cases/{case_id}/documents/{document_id}/content", headers=headers)


async def test_both_co_borrowers_upload_their_own_documents_at_the_same_time(
        client: TestClient, database: Database) -> None:
    anna = await signed_in(client, "P-1", ANNA_DIGITS)
    piotr = await signed_in(client, "P-2", PIOTR_DIGITS)

    # The client's name and content type say nothing: Anna's PNG travels as "payslip.pdf", application/pdf.
    answers = await asyncio.gather(upload(client, anna, "D-1", PNG, "payslip.pdf", "application/pdf"),
                                   upload(client, piotr, "D-2", PDF, "income.pdf"))

    assert answers == [
        (200, uploaded("D-1", "Income statement – Anna", "P-1", "image/png", PNG)),
        (200, uploaded("D-2", "Income statement – Piotr", "P-2", "application/pdf", PDF))]
    assert sorted(await commands(client), key=lambda e: e["data"]["documentId"]) == [
        upload_command("D-1", "P-1", "Income statement – Anna", "image/png", PNG),
        upload_command("D-2", "P-2", "Income statement – Piotr", "application/pdf", PDF)]
    rows = await database.collection("history").find({"caseId": MORTGAGE, "kind": "DOCUMENT_UPLOADED"}).to_list(None)
    assert sorted((r["summary"], r["actor"], r["channel"]) for r in rows) == [
        ("Document sent in the Customer Panel: Income statement – Anna",
         {"type": "CUSTOMER", "id": "P-1", "name": None}, "PANEL"),
        ("Document sent in the Customer Panel: Income statement – Piotr",
         {"type": "CUSTOMER", "id": "P-2", "name": None}, "PANEL")]
    records = await database.collection("audit").find({"operation": "panelUploadDocument"}).to_list(None)
    assert sorted((r["actor"], r["outcome"], r["caseIds"], len(r["eventIds"])) for r in records) == [
        (f"panel:{MORTGAGE}/P-1", "ok", [MORTGAGE], 1), (f"panel:{MORTGAGE}/P-2", "ok", [MORTGAGE], 1)]
    # Piotr's panel shows the document sent; the co-borrower's progress follows.
    view = await post(client, "{ panelCase { documents { id status } others { documentsComplete } } }", headers=anna)
    assert view["data"]["panelCase"] == {"documents": [{"id": "D-1", "status": "UPLOADED"},
                                                       {"id": "D-3", "status": "ORDERED"}],
                                         "others": [{"documentsComplete": True}]}


async def test_the_same_file_again_is_one_command_and_a_new_file_is_a_new_version(client: TestClient) -> None:
    piotr = await signed_in(client, "P-2", PIOTR_DIGITS)
    first = uploaded("D-2", "Income statement – Piotr", "P-2", "application/pdf", PDF)

    assert await asyncio.gather(upload(client, piotr, "D-2", PDF), upload(client, piotr, "D-2", PDF)) == [
        (200, first), (200, first)]
    assert await upload(client, piotr, "D-2", PDF) == (200, first)
    assert len(await commands(client)) == 1

    better = PDF.replace(b"8500", b"8700")
    assert await upload(client, piotr, "D-2", better) == (
        200, uploaded("D-2", "Income statement – Piotr", "P-2", "application/pdf", better))
    assert [e["data"]["sha256"] for e in await commands(client)] == [PIOTR_SHA, hashlib.sha256(better).hexdigest()]


@pytest.mark.parametrize(("document_id", "refusal"), [
    ("D-2", ("FORBIDDEN", "document D-2 is not yours")),  # the co-borrower's
    ("D-3", ("FORBIDDEN", "document D-3 is not yours")),  # shared with every participant: the bank's to provide
    ("D-99", ("NOT_FOUND", "document D-99 not found in your case")),
])
async def test_a_document_that_is_not_the_participants_own_is_refused_and_nothing_is_kept_or_sent(
        client: TestClient, database: Database, document_id: str, refusal: tuple[str, str]) -> None:
    anna = await signed_in(client, "P-1", ANNA_DIGITS)

    status, body = await upload(client, anna, document_id, PDF)

    assert (status, body["data"], code_of(body)) == (200, None, refusal)
    assert await chunks(database) == []
    assert await commands(client) == []
    view = await post(client, "{ case(id: \"CASE-2026-000123\") { documents { id status sha256 } } }",
                      headers=ADVISOR)
    assert view["data"]["case"]["documents"] == [{"id": "D-1", "status": "RECEIVED", "sha256": None},
                                                 {"id": "D-2", "status": "MISSING", "sha256": None},
                                                 {"id": "D-3", "status": "ORDERED", "sha256": None}]
    [record] = await database.collection("audit").find({"operation": "panelUploadDocument"}).to_list(None)
    # A refusal is "denied"; an id the case does not have is an "error" of the caller, as for every NOT_FOUND.
    assert (record["outcome"], record["eventIds"]) == ("denied" if refusal[0] == "FORBIDDEN" else "error", [])


async def test_an_executable_renamed_pdf_is_refused(client: TestClient, database: Database) -> None:
    piotr = await signed_in(client, "P-2", PIOTR_DIGITS)

    status, body = await upload(client, piotr, "D-2", EXECUTABLE, "income.pdf", "application/pdf")

    assert (status, code_of(body)) == (
        200, ("BAD_USER_INPUT", "file: not a PDF, JPEG or PNG document (its content decides, not its name)"))
    assert await chunks(database) == []
    assert await commands(client) == []


async def test_a_file_over_the_limit_is_refused(client: TestClient, database: Database) -> None:
    piotr = await signed_in(client, "P-2", PIOTR_DIGITS)
    just_over = b"%PDF-1.7\n" + b"0" * (LIMIT - 8)
    far_over = b"%PDF-1.7\n" + b"0" * (LIMIT + 200 * 1024)

    assert (await upload(client, piotr, "D-2", just_over))[1]["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert code_of((await upload(client, piotr, "D-2", just_over))[1]) == (
        "BAD_USER_INPUT", f"file: larger than the limit of {LIMIT} bytes")
    # Far over: refused before the body is read.
    status, body = await upload(client, piotr, "D-2", far_over)
    assert (status, body) == (413, {"errors": [{"message": f"request body exceeds the limit of {LIMIT + 64 * 1024} bytes",
                                                "extensions": {"code": "BAD_USER_INPUT"}}]})
    assert await chunks(database) == []
    assert await commands(client) == []


async def test_a_kind_the_case_type_does_not_take_is_refused(client: TestClient, database: Database) -> None:
    # The engine asks Piotr for a valuation report: not a kind a mortgage participant uploads in the panel.
    linked = envelope("case.document_linked", MORTGAGE, {"document": {
        "id": "D-9", "name": "Valuation report", "kind": "VALUATION", "status": "REQUESTED", "participantId": "P-2"}})
    published = await post(client, PUBLISH_CASE_EVENT, {"event": publish_input(linked)},
                           bearer(roles=("system-publisher",), system=True))
    assert published["data"]["publishCaseEvent"]["status"] == "APPLIED"
    piotr = await signed_in(client, "P-2", PIOTR_DIGITS)

    status, body = await upload(client, piotr, "D-9", PDF)

    assert code_of(body) == ("BAD_USER_INPUT", "document D-9 (VALUATION) is not one you can upload here; please "
                                               "send it to the bank as your advisor asked")
    assert await chunks(database) == []
    assert await commands(client) == []


async def test_the_stored_chunks_are_sealed_and_hold_no_plaintext(client: TestClient, database: Database) -> None:
    piotr = await signed_in(client, "P-2", PIOTR_DIGITS)
    marker = b"PAYSLIP-OF-PIOTR-NOWAK"
    large = b"%PDF-1.7\n" + marker * (2 * 1024 * 1024 // len(marker) + 1000)  # about 2 MiB: three chunks

    assert (await upload(client, piotr, "D-2", large))[0] == 200

    stored = sorted(await chunks(database), key=lambda c: c["index"])
    assert [(c["caseId"], c["documentId"], c["index"], c["count"]) for c in stored] == [
        (MORTGAGE, "D-2", 0, 3), (MORTGAGE, "D-2", 1, 3), (MORTGAGE, "D-2", 2, 3)]
    assert all(set(c["sealed"]) == {"kid", "n", "c"} and len(c["sealed"]["c"]) <= 1024 * 1024 for c in stored)
    assert all(marker not in c["sealed"]["c"] and b"%PDF" not in c["sealed"]["c"] for c in stored)
    assert marker.decode() not in str(stored)


async def test_an_employee_of_the_branch_downloads_the_same_bytes(client: TestClient, database: Database) -> None:
    piotr = await signed_in(client, "P-2", PIOTR_DIGITS)
    await upload(client, piotr, "D-2", PDF)

    response = await download(client, ADVISOR)

    body = await response.read()
    assert (response.status, body, hashlib.sha256(body).hexdigest()) == (200, PDF, PIOTR_SHA)
    assert {name: response.headers[name] for name in (
        "Content-Type", "Content-Disposition", "X-Content-Type-Options", "Cache-Control")} == {
        "Content-Type": "application/pdf", "Content-Disposition": 'attachment; filename="D-2.pdf"',
        "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"}
    [record] = await database.collection("audit").find({"operation": "documentContent"}).to_list(None)
    assert {k: record[k] for k in ("actor", "actorName", "action", "outcome", "caseIds", "fields", "channel")} == {
        "actor": record["actor"], "actorName": "ewa.zielinska", "action": "READ", "outcome": "ok",
        "caseIds": [MORTGAGE], "fields": ["Document.content"], "channel": "BRANCH"}
    # Piotr downloads his own, Anna not his.
    own = await download(client, piotr)
    assert (own.status, await own.read()) == (200, PDF)
    anna = await signed_in(client, "P-1", ANNA_DIGITS)
    other = await download(client, anna)
    assert (other.status, await other.json()) == (
        403, {"errors": [{"message": "document D-2 is not yours", "extensions": {"code": "FORBIDDEN"}}]})


@pytest.mark.parametrize(("headers", "status", "code"), [
    (WARSAW, 404, "NOT_FOUND"),  # another branch: the case does not exist for them
    (CALL_CENTER, 403, "FORBIDDEN"),  # a channel that shows no document content
    (bearer(roles=("auditor",)), 403, "FORBIDDEN"),  # no case-reading role
    ({}, 401, "UNAUTHENTICATED"),
    ({"Authorization": "Bearer not-a-token"}, 401, "UNAUTHENTICATED"),
])
async def test_a_download_is_refused_to_whoever_may_not_read_the_document(
        client: TestClient, database: Database, headers: dict[str, str], status: int, code: str) -> None:
    piotr = await signed_in(client, "P-2", PIOTR_DIGITS)
    await upload(client, piotr, "D-2", PDF)

    response = await download(client, headers)

    body = await response.json()
    assert (response.status, body["errors"][0]["extensions"]["code"]) == (status, code)
    assert PDF.decode() not in str(body)
    records = await database.collection("audit").find(
        {"operation": "documentContent"}).to_list(None)
    assert [(r["outcome"], r["caseIds"]) for r in records] == [("denied", [MORTGAGE])]


async def test_a_document_without_content_is_not_found(client: TestClient, services: Services) -> None:
    response = await download(client, ADVISOR, "D-2")

    assert (response.status, await response.json()) == (404, {"errors": [{
        "message": "no content has been sent for document D-2", "extensions": {"code": "NOT_FOUND"}}]})
