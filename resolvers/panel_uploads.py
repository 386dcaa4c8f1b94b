"""panelUploadDocument: a participant sends the content of one of their documents (issue 9, CONTRACT §5).

Rules, checked in this order, each refusal changing and sending nothing:

* the session and its case as for every panel act (resolvers/panel_actions.py); the document must be the
  participant's own: a document shared with every participant (`participantId` null) is FORBIDDEN too, because
  what one participant sends there every other participant would read, and two of them would overwrite each
  other's file; the bank provides shared documents;
* its kind is one the case type lets participants upload (`uploadable_kinds`, access/panel_views.py), else
  BAD_USER_INPUT;
* the file is 1 byte to PANEL_UPLOAD_MAX_BYTES (a body much larger is refused with 413 before it is read);
* its type is decided by its first bytes, never by its name or the content type the client claims: PDF
  (`%PDF-`), JPEG (`FF D8 FF`) or PNG (`89 50 4E 47 0D 0A 1A 0A`); anything else (an executable renamed
  `.pdf`) is BAD_USER_INPUT.

The content goes to MongoDB in sealed chunks (stores/document_contents.py) before `case.document_uploaded` names
its SHA-256, so the case never points to content that is not there. The same bytes sent again return the document
and send nothing; other bytes are a new version (a better scan), sent again as `document.uploaded`.
"""
from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from typing import Any

from access.panel_views import panel_case_type
from consumers import panel_acts
from context import Context
from errors import BadInput
from resolvers.panel_actions import ingest_act, own_case, own_item

PDF, JPEG, PNG = "application/pdf", "image/jpeg", "image/png"
# Magic numbers: the first bytes of each accepted type.
SIGNATURES = ((b"%PDF-", PDF), (b"\xff\xd8\xff", JPEG), (b"\x89PNG\r\n\x1a\n", PNG))
EXTENSIONS = {PDF: "pdf", JPEG: "jpg", PNG: "png"}


def sniffed_type(content: bytes) -> str | None:
    """The content type the bytes prove, or None when they are none of the accepted types."""
    return next((kind for magic, kind in SIGNATURES if content.startswith(magic)), None)


def _read(file: Any, limit: int) -> bytes:
    """The upload's bytes, at most `limit + 1` of them (enough to tell it is too large)."""
    if isinstance(file, (bytes, bytearray)):
        return bytes(file[:limit + 1])
    if hasattr(file, "read"):
        data = file.read(limit + 1)
        return data if isinstance(data, bytes) else bytes(data)
    raise BadInput("file: send the document as a file part of a multipart request (GraphQL multipart request spec)")


async def upload_document(context: Context, document_id: str, file: Any) -> dict[str, Any]:
    """The document as it stands after the upload (or as it was, if it already holds these bytes)."""
    principal, case = await own_case(context)
    document = own_item(case, principal, "documents", document_id, "document")
    kinds = panel_case_type(case.get("caseType")).uploadable_kinds
    if document.get("kind") not in kinds:
        raise BadInput(f"document {document_id} ({document.get('kind')}) is not one you can upload here; "
                       "please send it to the bank as your advisor asked")
    limit = context.settings.panel_upload_max_bytes
    content = _read(file, limit)
    if not content:
        raise BadInput("file: the file is empty")
    if len(content) > limit:
        raise BadInput(f"file: larger than the limit of {limit} bytes")
    content_type = sniffed_type(content)
    if content_type is None:
        raise BadInput("file: not a PDF, JPEG or PNG document (its content decides, not its name)")
    if document.get("sha256") == hashlib.sha256(content).hexdigest() and document.get("status") == panel_acts.UPLOADED:
        return document  # these bytes already: a repeated upload sends nothing
    sha256 = await context.services.documents.put(case["_id"], document_id, content)
    assert principal.participant_id is not None
    event = panel_acts.upload_event(case["_id"], document, principal.participant_id, content_type, len(content),
                                    sha256, datetime.now(timezone.utc))
    after = await ingest_act(context, principal, event)
    context.audit.changes.append({"caseId": case["_id"], "field": f"documents[{document_id}].sha256",
                                  "old": document.get("sha256"), "new": sha256})
    current = panel_acts.find_item(after, "documents", document_id)
    assert current is not None
    return current
