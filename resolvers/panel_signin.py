"""Signing in to one case in the Customer Panel: invitation, one-time code, session, logout (issue 9, CONTRACT §5).

Rules (NIST SP 800-63B-4 out-of-band codes, PSD2 RTS Art. 4):

* panelRequestCode answers `true` whatever happened (no enumeration), and never sooner than
  PANEL_ANSWER_FLOOR_SECONDS, so its time does not tell a match from none either; an unknown case costs the same
  decryptions as a known one. The fragment (last 4 PESEL digits) is compared in constant time with each
  participant's decrypted PESEL. A match stages `notification.requested` (`panel-otp`) with a 6-digit code from
  `secrets` in the code's own record, which keeps only its keyed hash; the message is sealed in the outbox.
* A code is valid PANEL_CODE_TTL_SECONDS, once; a new code replaces (voids) the last. Failures are counted per
  (case, fragment) whether or not they match anyone, so a new code does not reset them: the 5th failure locks
  the pair for 15 minutes, and a locked pair is RATE_LIMITED even with the right code. At most 3 codes per
  participant per 15 minutes (more requests answer `true` and send nothing). Per client address, 30 code
  requests and 30 failed sign-ins per 15 minutes are served; the next is RATE_LIMITED.
* Two participants sharing the fragment each get their own code; the code decides who signs in.
* A case past its panel availability (access/panel_views.py) still gets a code, so only whoever holds the
  participant's phone learns, at sign-in, that it is closed (FORBIDDEN with the date): telling it for a bare
  fragment would confirm that the fragment matched.
* Every attempt leaves an audit record `PANEL_SIGN_IN` with its outcome and client address, never the code or
  the fragment; the counters hold a keyed hash of (case, fragment), never the digits.
"""
from __future__ import annotations

import asyncio
import hmac
import re
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar

from access.panel_views import available_until
from auth.panel_tokens import new_panel_token
from auth.principal import Principal, PrincipalKind
from consumers.publication import SOURCE
from context import Context
from errors import BadInput, Forbidden, NotFound, RateLimited, Unauthenticated
from resolvers.cases import get_case
from stores.case_scope import EVERYTHING
from stores.outbox import Message
from stores.protection import SealedValueError, open_participant_field

WINDOW = timedelta(minutes=15)
LOCK_AFTER_FAILURES = 5
LOCK_FOR = timedelta(minutes=15)
CODES_PER_PARTICIPANT = 3
ADDRESS_CODE_REQUESTS = 30
ADDRESS_FAILURES = 30
CODE_DIGITS = 6
INVITATION_KEPT = timedelta(days=30)
MAX_CASE_ID = 100
SIGN_IN_REFUSED = "the case number, the PESEL digits or the code is not right"
_FRAGMENT = re.compile(r"[0-9]{4}")
_CODE = re.compile(r"[0-9]{6}")
# What a decryption costs is spent for an unknown case too: as many as a case with two participants.
DECOY_PARTICIPANTS = 2
_DECOY_AAD = "panel/decoy/pesel"
T = TypeVar("T")


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


async def _no_sooner_than(floor_seconds: float, work: Callable[[], Awaitable[T]]) -> T:
    """`work`'s result (or error), delivered no sooner than `floor_seconds` after the start."""
    started = time.monotonic()
    try:
        return await work()
    finally:
        await asyncio.sleep(max(floor_seconds - (time.monotonic() - started), 0))


def _checked_fragment(case_id: str, fragment: str) -> None:
    if not case_id or len(case_id) > MAX_CASE_ID:
        raise BadInput("caseId: the case number from your SMS or letter")
    if not _FRAGMENT.fullmatch(fragment):
        raise BadInput("peselFragment: the last 4 digits of your PESEL")


def _keyed(context: Context, purpose: str, *parts: str) -> str:
    return context.services.cipher.blind_index("/".join(parts), purpose=purpose)


def _address(context: Context) -> str:
    remote = context.request.remote if context.request is not None else None
    return remote or "unknown"


async def _audit(context: Context, operation: str, outcome: str, case: dict[str, Any] | None,
                 participant_id: str | None = None) -> None:
    principal = context.principal
    entry: dict[str, Any] = {
        "at": _now(), "actor": principal.subject if principal else "anonymous",
        "actorName": principal.username if principal else None, "action": "PANEL_SIGN_IN", "operation": operation,
        "outcome": outcome, "caseIds": [case["_id"]] if case else [], "channel": "PANEL",
        "remote": _address(context),
    }
    if participant_id is not None:
        entry["participantId"] = participant_id
    await context.services.audit.append(entry)


def _matching(context: Context, case: dict[str, Any] | None, fragment: str) -> list[dict[str, Any]]:
    """The participants whose PESEL ends in `fragment`, compared in constant time; the same work for no case."""
    cipher = context.services.cipher
    if case is None:
        decoy = cipher.seal("00000000000", aad=_DECOY_AAD)
        for _ in range(DECOY_PARTICIPANTS):
            hmac.compare_digest(cipher.open(decoy, aad=_DECOY_AAD)[-4:].encode(), fragment.encode())
        return []
    found = []
    for participant in case.get("participants") or ():
        try:
            pesel = open_participant_field(case, participant["id"], "pesel", cipher) or ""
        except SealedValueError:
            continue  # a value that does not open signs nobody in
        # Every participant is compared, a match or not: the loop's time does not depend on where one is.
        if hmac.compare_digest(pesel[-4:].encode(), fragment.encode()) and len(pesel) >= 4:
            found.append(participant)
    return found


def _code_key(case_id: str, participant_id: str) -> str:
    return f"{case_id}/{participant_id}"


def _code_hash(context: Context, case_id: str, participant_id: str, code: str) -> str:
    return _keyed(context, "panel-otp", case_id, participant_id, code)


def _notification(case_id: str, phone: str, template: str, params: dict[str, Any], now: datetime) -> dict[str, Any]:
    event_id = str(uuid.uuid4())
    event = {
        "specversion": "1.0", "id": event_id, "source": SOURCE, "type": "notification.requested", "subject": case_id,
        "time": _iso(now), "datacontenttype": "application/json",
        "data": {"channel": "SMS", "to": phone, "template": template, "params": params},
    }
    # Sealed in the outbox: a phone number, and for panel-otp the code itself.
    return Message(id=event_id, topic="commands", key=case_id, event=event, sensitive=True).staged()


async def _send_code(context: Context, case: dict[str, Any], participant: dict[str, Any]) -> str:
    services = context.services
    case_id, participant_id = case["_id"], participant["id"]
    if await services.panel.counters.add(f"codes:{_code_key(case_id, participant_id)}", WINDOW) > CODES_PER_PARTICIPANT:
        return "participant-limit"
    phone = open_participant_field(case, participant_id, "phone", services.cipher)
    if not phone:
        return "no-phone"
    now = _now()
    code = f"{secrets.randbelow(10 ** CODE_DIGITS):0{CODE_DIGITS}d}"
    expires = now + timedelta(seconds=services.settings.panel_code_ttl_seconds)
    message = _notification(case_id, phone, "panel-otp", {
        "caseId": case_id, "participantId": participant_id, "otp": code, "expiresAt": _iso(expires)}, now)
    record = await services.panel.codes.issue(_code_key(case_id, participant_id), {
        "caseId": case_id, "participantId": participant_id, "codeHash": _code_hash(context, case_id, participant_id, code),
        "createdAt": now, "expiresAt": expires, "usedAt": None, "writeId": uuid.uuid4().hex, "stagedAt": now,
        "outbox": [message]})
    await services.staging.relay_records(services.panel.codes, [record])
    return "code-sent"


async def request_code(context: Context, case_id: str, fragment: str) -> bool:
    """panelRequestCode: always True (or RATE_LIMITED for the address), in about the same time."""
    _checked_fragment(case_id, fragment)
    return await _no_sooner_than(context.settings.panel_answer_floor_seconds,
                                 lambda: _request_code(context, case_id, fragment))


async def _request_code(context: Context, case_id: str, fragment: str) -> bool:
    services = context.services
    counters = services.panel.counters
    if await counters.add(f"address-codes:{_keyed(context, 'panel-address', _address(context))}",
                          WINDOW) > ADDRESS_CODE_REQUESTS:
        await _audit(context, "panelRequestCode", "rate-limited", None)
        raise RateLimited("too many code requests from this address; try again in 15 minutes")
    case = await services.cases.get(case_id, scope=EVERYTHING)
    matches = _matching(context, case, fragment)
    pair = await counters.read(f"pair:{_keyed(context, 'panel-sign-in', case_id, fragment)}")
    if pair.locked_until is not None:
        await _audit(context, "panelRequestCode", "locked", case)
        return True
    if not matches:
        await _audit(context, "panelRequestCode", "no-match", case)
        return True
    assert case is not None
    for participant in matches:
        outcome = await _send_code(context, case, participant)
        await _audit(context, "panelRequestCode", outcome, case, participant["id"])
    return True


async def login(context: Context, case_id: str, fragment: str, otp: str) -> dict[str, Any]:
    """panelLogin: a session for the participant the code was sent to; UNAUTHENTICATED, the same, for any miss."""
    _checked_fragment(case_id, fragment)
    if not _CODE.fullmatch(otp):
        raise BadInput("otp: the 6-digit code from the SMS")
    return await _no_sooner_than(context.settings.panel_answer_floor_seconds,
                                 lambda: _login(context, case_id, fragment, otp))


async def _login(context: Context, case_id: str, fragment: str, otp: str) -> dict[str, Any]:
    services = context.services
    counters = services.panel.counters
    address_key = f"address-failures:{_keyed(context, 'panel-address', _address(context))}"
    pair_key = f"pair:{_keyed(context, 'panel-sign-in', case_id, fragment)}"
    if (await counters.read(address_key)).count >= ADDRESS_FAILURES:
        await _audit(context, "panelLogin", "rate-limited", None)
        raise RateLimited("too many failed sign-ins from this address; try again in 15 minutes")
    if (await counters.read(pair_key)).locked_until is not None:
        await _audit(context, "panelLogin", "locked", None)
        raise RateLimited("too many wrong codes for this case and PESEL digits; try again in 15 minutes")
    case = await services.cases.get(case_id, scope=EVERYTHING)
    matches = {p["id"]: p for p in _matching(context, case, fragment)}
    outcome, participant = "no-match" if not matches else "wrong-code", None
    if matches:
        hashes = {pid: _code_hash(context, case_id, pid, otp) for pid in matches}
        now = _now()
        for record in await services.panel.codes.current([_code_key(case_id, pid) for pid in matches]):
            candidate = hashes[record["participantId"]]
            if not hmac.compare_digest(record["codeHash"], candidate):
                continue
            participant = matches[record["participantId"]]
            if record.get("usedAt") is not None:
                outcome = "reused-code"
            elif record["expiresAt"] <= now:
                outcome = "expired-code"
            elif not await services.panel.codes.use(record["_id"], candidate, now):
                outcome = "reused-code"
            else:
                outcome = "signed-in"
            break
    if outcome != "signed-in":
        if await counters.add(pair_key, WINDOW) >= LOCK_AFTER_FAILURES:
            await counters.lock(pair_key, _now() + LOCK_FOR)
        await counters.add(address_key, WINDOW)
        await _audit(context, "panelLogin", outcome, case, participant["id"] if participant else None)
        raise Unauthenticated(SIGN_IN_REFUSED)
    assert case is not None and participant is not None
    await counters.clear(pair_key)
    until = available_until(case)
    if until is not None and until <= _now():
        await _audit(context, "panelLogin", "outside-window", case, participant["id"])
        raise Forbidden(unavailable_reason(case, until))
    session = await _open_session(context, case_id, participant["id"])
    await _audit(context, "panelLogin", "signed-in", case, participant["id"])
    context.audit.case_ids.add(case_id)
    return {"token": session["token"], "expiresAt": session["idleUntil"],
            "participant": {"id": participant["id"], "role": participant["role"], "name": participant["name"]}}


def unavailable_reason(case: dict[str, Any], until: datetime) -> str:
    return (f"case {case['_id']} was closed on {case['closedAt'].date().isoformat()} and was available in the "
            f"Customer Panel until {until.date().isoformat()}; please contact the bank")


async def _open_session(context: Context, case_id: str, participant_id: str) -> dict[str, Any]:
    settings = context.settings
    token, session_id = new_panel_token()
    now = _now()
    expires = now + timedelta(seconds=settings.panel_session_max_seconds)
    idle_until = min(now + timedelta(seconds=settings.panel_session_idle_seconds), expires)
    await context.services.panel.sessions.open({
        "_id": session_id, "caseId": case_id, "participantId": participant_id, "createdAt": now, "lastUsedAt": now,
        "idleUntil": idle_until, "expiresAt": expires, "revokedAt": None})
    return {"token": token, "idleUntil": idle_until}


async def panel_participant(context: Context) -> Principal:
    """The signed-in panel participant whose session still holds (a WebSocket keeps its sign-in, so look again)."""
    principal = context.principal
    if principal is None:
        raise Unauthenticated("sign in to the case first (panelLogin)")
    if principal.kind is not PrincipalKind.PANEL or principal.token_id is None:
        raise Forbidden("only a Customer Panel session may do this")
    if await context.services.panel.sessions.live(principal.token_id) is None:
        raise Unauthenticated("the panel session ended; sign in again")
    return principal


async def logout(context: Context) -> bool:
    principal = await panel_participant(context)
    assert principal.token_id is not None
    await context.services.panel.sessions.revoke(principal.token_id)
    context.audit.case_ids.add(principal.case_id or "")
    context.audit.changes.append({"caseId": principal.case_id, "field": "panelSession", "old": "open", "new": "closed"})
    await _audit(context, "panelLogout", "signed-out", {"_id": principal.case_id}, principal.participant_id)
    return True


async def issue_access(context: Context, case_id: str, participant_id: str) -> bool:
    """issuePanelAccess: an employee who may see the case, or the process engine, invites a participant by SMS."""
    principal = context.principal
    if principal is None:
        raise Unauthenticated("sign in to invite a participant")
    if principal.kind is PrincipalKind.SYSTEM:
        case = await context.services.cases.get(case_id, scope=EVERYTHING)
    elif principal.kind is PrincipalKind.EMPLOYEE:
        case = await get_case(context, case_id)
    else:
        raise Forbidden("participants are invited by the bank's employees and its process engine")
    if case is None:
        raise NotFound(f"case {case_id} not found")
    participant = next((p for p in case.get("participants") or () if p["id"] == participant_id), None)
    if participant is None:
        raise NotFound(f"case {case_id} has no participant {participant_id}")
    until = available_until(case)
    if until is not None and until <= _now():
        raise Forbidden(unavailable_reason(case, until))
    services = context.services
    phone = open_participant_field(case, participant_id, "phone", services.cipher)
    if not phone:
        raise BadInput(f"participant {participant_id} has no phone number to send the invitation to")
    now = _now()
    message = _notification(case_id, phone, "panel-invitation", {"caseId": case_id, "participantId": participant_id},
                            now)
    record = await services.panel.invitations.add({
        "_id": str(uuid.uuid4()), "caseId": case_id, "participantId": participant_id, "invitedBy": principal.username,
        "at": now, "expiresAt": now + INVITATION_KEPT, "writeId": uuid.uuid4().hex, "stagedAt": now,
        "outbox": [message]})
    await services.staging.relay_records(services.panel.invitations, [record])
    context.audit.case_ids.add(case_id)
    if case.get("customerId"):
        context.audit.customer_ids.add(case["customerId"])
    context.audit.changes.append({"caseId": case_id, "field": f"participants[{participant_id}].panelInvitation",
                                  "old": None, "new": _iso(now)})
    return True
