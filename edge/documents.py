"""`GET /cases/{caseId}/documents/{documentId}/content`: the content a participant sent in the Customer Panel.

Who may download (rules in `content_access`, each attempt audited as `documentContent` with its outcome):

* an employee with a case-reading role, whose row scope admits the case (another branch, a hidden case type, a
  restricted case: NOT_FOUND, as `case(id)` answers null), through a channel that shows document content
  (`Document.url` in access/policy.py's channel views: the branch and the back office; the call center and a
  token without a channel claim: FORBIDDEN);
* a panel participant, for their own documents of their own case while it is in the panel; another
  participant's document: FORBIDDEN, another case: NOT_FOUND;
* nobody else: no token 401, a bad token 401 (audited like every failed sign-in), other principals FORBIDDEN.

The answer is `Content-Disposition: attachment` with the type the bytes proved at upload, `nosniff`, `no-store`
and a sandboxing CSP, so a browser saves it rather than running it in the service's origin.
"""
from __future__ import annotations

import re
from typing import Any

import orjson
from aiohttp import web

from access.policy import CASE_READERS, Access, field_access
from access.scope import case_scope
from auth.principal import Principal, PrincipalKind
from auth.tokens import bearer_token
from consumers.panel_acts import find_item
from context import Context
from edge.authentication import call_channel, failed_authentication_entry
from edge.keys import SERVICES
from errors import BadInput, DomainError, Forbidden, NotFound, Unauthenticated
from resolvers.audit import record_operation
from resolvers.panel_case import check_available
from stores.case_scope import EVERYTHING

PATH = "/cases/{caseId}/documents/{documentId}/content"
OPERATION = "documentContent"
_STATUS = {"UNAUTHENTICATED": 401, "FORBIDDEN": 403, "NOT_FOUND": 404, "BAD_USER_INPUT": 400}
_EXTENSIONS = {"application/pdf": "pdf", "image/jpeg": "jpg", "image/png": "png"}
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def _error(error: DomainError) -> web.Response:
    body = {"errors": [{"message": error.message, "extensions": {"code": error.code}}]}
    return web.Response(status=_STATUS.get(error.code, 500), body=orjson.dumps(body), content_type="application/json")


async def _principal(request: web.Request) -> Principal:
    header = request.headers.get("Authorization")
    if header is None:
        raise Unauthenticated("sign in to download a document")
    token = bearer_token(header)
    if token is None:
        raise Unauthenticated("the Authorization header must be `Bearer <token>`")
    return await request.app[SERVICES].verifier.verify(token)


async def content_access(context: Context, case_id: str, document_id: str) -> dict[str, Any]:
    """The case whose document `context.principal` may download, or the refusal (a DomainError)."""
    principal = context.principal
    assert principal is not None
    cases = context.services.cases
    if principal.kind is PrincipalKind.EMPLOYEE:
        if not principal.roles & CASE_READERS:
            raise Forbidden("downloading a document needs a role that reads cases")
        if field_access("Document.url", principal.roles, context.channel) is not Access.FULL:
            raise Forbidden(f"document content is not shown through the {context.channel or 'unnamed'} channel")
        case = await cases.get(case_id, scope=case_scope(principal))
    elif principal.kind is PrincipalKind.PANEL:
        case = await cases.get(case_id, scope=EVERYTHING) if case_id == principal.case_id else None
        if case is not None:
            check_available(case)
    else:
        raise Forbidden("documents are downloaded by the bank's employees and by the participant who sent them")
    if case is None:
        raise NotFound(f"case {case_id} not found")
    context.audit.cases_returned([case])
    document = find_item(case, "documents", document_id)
    if document is None:
        raise NotFound(f"document {document_id} not found in case {case_id}")
    if principal.kind is PrincipalKind.PANEL and document.get("participantId") != principal.participant_id:
        raise Forbidden(f"document {document_id} is not yours")
    if not document.get("sha256"):
        raise NotFound(f"no content has been sent for document {document_id}")
    return case


async def document_content(request: web.Request) -> web.StreamResponse:
    services = request.app[SERVICES]
    case_id, document_id = request.match_info["caseId"], request.match_info["documentId"]
    try:
        principal = await _principal(request)
    except Unauthenticated as error:
        entry = failed_authentication_entry(request, error.message, OPERATION)
        await services.audit.append({**entry, "caseIds": [case_id]})
        return _error(error)
    try:
        channel = call_channel(principal, request.headers.get("X-Channel"))
    except ValueError as error:
        return _error(BadInput(str(error)))
    context = Context(services=services, request=request, principal=principal, channel=channel,
                      audit_reason=request.headers.get("X-Audit-Reason"))
    context.audit.fields.add("Document.content")
    try:
        case = await content_access(context, case_id, document_id)
    except DomainError as error:
        context.audit.case_ids.add(case_id)
        await record_operation(context, action="READ", operation=OPERATION, outcome="denied")
        return _error(error)
    document = find_item(case, "documents", document_id)
    assert document is not None
    content = await services.documents.get(case_id, document_id, document["sha256"], document["size"])
    if not await record_operation(context, action="READ", operation=OPERATION, outcome="ok"):
        return _error(DomainError("the download could not be recorded in the audit trail and was not served"))
    content_type = document.get("contentType") or "application/octet-stream"
    name = _UNSAFE.sub("_", f"{document_id}.{_EXTENSIONS.get(content_type, 'bin')}")
    return web.Response(body=content, content_type=content_type, headers={
        "Content-Disposition": f'attachment; filename="{name}"', "X-Content-Type-Options": "nosniff",
        "Cache-Control": "no-store", "Content-Security-Policy": "sandbox; default-src 'none'"})


def add_document_routes(app: web.Application) -> None:
    app.router.add_get(PATH, document_content)
