"""The Customer Panel and online banking's view of a case (CONTRACT §5 "Customer Panel"): sign-in, `PanelCase`."""
from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import datetime
from typing import Any

import strawberry
from strawberry.types import Info

from strawberry.file_uploads import Upload
from strawberry.scalars import JSON

from resolvers import my_cases as my_case_rules
from resolvers import panel_actions as action_rules
from resolvers import panel_uploads as upload_rules
from resolvers import panel_case as panel_rules
from resolvers import panel_live as live_rules
from resolvers import panel_signin as signin_rules
from schema.cases import _DOCUMENT, CaseFilter, Consent, Document, HistoryEntry, _items, consent_items
from schema.connections import Connection, connection_from_page
from schema.tasks import Task


@strawberry.type
class PanelParticipant:
    id: strawberry.ID
    role: str
    name: str


@strawberry.type
class FaqEntry:
    question: str
    answer: str


@strawberry.type(description="Another participant's progress, as yes/no facts: never their items or their data.")
class PanelProgress:
    role: str
    role_text: str
    consents_given: bool
    documents_complete: bool
    actions_complete: bool
    summary: str


@strawberry.type(description="One participant's view of their case, in customer words.")
class PanelCase:
    case_id: strawberry.ID
    title: str
    case_type: str
    product: str | None
    status: str
    status_text: str
    stage: str | None
    stage_text: str | None
    next_steps: list[str]
    participant: PanelParticipant
    actions: list[Task] = strawberry.field(description="My open actions (tasks with my participantId).")
    consents: list[Consent] = strawberry.field(description="My consents.")
    documents: list[Document] = strawberry.field(
        description="My documents and those shared with every participant (`url` is always null here).")
    others: list[PanelProgress] = strawberry.field(description="How far the other participants are.")
    faq: list[FaqEntry]
    available_until: datetime | None = strawberry.field(
        description="Until when a closed case stays in the panel; null while the case is open.")
    view: strawberry.Private[dict[str, Any]]

    @classmethod
    def from_view(cls, view: dict[str, Any]) -> PanelCase:
        return cls(
            case_id=view["caseId"], title=view["title"], case_type=view["caseType"], product=view["product"],
            status=view["status"], status_text=view["statusText"], stage=view["stage"], stage_text=view["stageText"],
            next_steps=view["nextSteps"], participant=PanelParticipant(**view["participant"]),
            actions=[Task.from_doc(task, view["caseId"]) for task in view["actions"]],
            consents=consent_items(view["consents"], view["caseId"]), documents=_items(Document, view["documents"], _DOCUMENT),
            others=[PanelProgress(role=o["role"], role_text=o["roleText"], consents_given=o["consentsGiven"],
                                  documents_complete=o["documentsComplete"], actions_complete=o["actionsComplete"],
                                  summary=o["summary"]) for o in view["others"]],
            faq=[FaqEntry(**entry) for entry in view["faq"]], available_until=view["availableUntil"], view=view,
        )

    @strawberry.field(description="What happened in the case that I may read, newest first, told by the bank.")
    async def history(self, info: Info, first: int | None = None,
                      after: str | None = None) -> Connection[HistoryEntry]:
        page = await panel_rules.history_page(info.context, self.view, first, after)
        return connection_from_page(page, HistoryEntry.from_doc)


@strawberry.type
class PanelSession:
    token: str
    expires_at: datetime = strawberry.field(description="When the session ends unless used again (idle timeout); "
                                                        "it ends at the latest PANEL_SESSION_MAX_SECONDS after sign-in.")
    participant: PanelParticipant


@strawberry.type
class PanelQueries:
    @strawberry.field(description="The signed-in participant's case (a Customer Panel session).")
    async def panel_case(self, info: Info) -> PanelCase | None:
        return PanelCase.from_view(await panel_rules.signed_in_case(info.context))

    @strawberry.field(description="Online / mobile banking: my cases, open ones first.")
    async def my_cases(self, info: Info, filter: CaseFilter | None = None, first: int | None = None,
                       after: str | None = None) -> Connection[PanelCase]:
        page = await my_case_rules.my_cases(info.context, filter.to_criteria() if filter else None, first, after)
        return connection_from_page(page, PanelCase.from_view)

    @strawberry.field(description="Online / mobile banking: one of my cases; null for any other.")
    async def my_case(self, info: Info, id: strawberry.ID) -> PanelCase | None:
        view = await my_case_rules.my_case(info.context, id)
        return PanelCase.from_view(view) if view is not None else None


@strawberry.type
class PanelMutations:
    @strawberry.mutation(description="Sends a one-time code by SMS to the participant whose PESEL ends in "
                                     "`peselFragment`; always true (no enumeration).")
    async def panel_request_code(self, info: Info, case_id: strawberry.ID, pesel_fragment: str) -> bool:
        return await signin_rules.request_code(info.context, case_id, pesel_fragment)

    @strawberry.mutation(description="Signs in to one case as one participant with the code from the SMS.")
    async def panel_login(self, info: Info, case_id: strawberry.ID, pesel_fragment: str, otp: str) -> PanelSession:
        session = await signin_rules.login(info.context, case_id, pesel_fragment, otp)
        return PanelSession(token=session["token"], expires_at=session["expiresAt"],
                            participant=PanelParticipant(**session["participant"]))

    @strawberry.mutation(description="Ends this Customer Panel session: its token is refused from now on.")
    async def panel_logout(self, info: Info) -> bool:
        return await signin_rules.logout(info.context)

    @strawberry.mutation(description="Gives (granted: true) or declines one of my consents; sends consent.recorded.")
    async def panel_give_consent(self, info: Info, consent_id: strawberry.ID, granted: bool) -> Consent:
        consent = await action_rules.give_consent(info.context, consent_id, granted)
        return consent_items([consent], str(consent.get("caseId") or ""))[0]

    @strawberry.mutation(description="Completes one of my actions with `input`; the action is COMPLETION_REQUESTED "
                                     "until the bank's process confirms it (task.completion_requested).")
    async def panel_complete_action(self, info: Info, task_id: strawberry.ID, input: JSON | None = None) -> Task:
        row = await action_rules.complete_action(info.context, task_id, input)
        # As panelCase shows an action: who at the bank works on it is not the participant's business.
        return Task.from_doc({**row, "assignee": None, "candidateGroups": []}, row["caseId"])

    @strawberry.mutation(description="Sends the content of one of my documents (GraphQL multipart request: a PDF, "
                                     "JPEG or PNG, up to PANEL_UPLOAD_MAX_BYTES); sends document.uploaded.")
    async def panel_upload_document(self, info: Info, document_id: strawberry.ID, file: Upload) -> Document:
        document = await upload_rules.upload_document(info.context, document_id, file)
        return _items(Document, [{**document, "url": None}], _DOCUMENT)[0]

    @strawberry.mutation(description="Invites a participant to the Customer Panel by SMS (panel-invitation).")
    async def issue_panel_access(self, info: Info, case_id: strawberry.ID, participant_id: strawberry.ID) -> bool:
        return await signin_rules.issue_access(info.context, case_id, participant_id)


@strawberry.type
class PanelSubscriptions:
    @strawberry.subscription(description="My case in the PanelCase shape after each change, until the session ends "
                                         "(a panel session: its own case, `id` may be left out; a customer: `id`).")
    async def panel_case_updated(self, info: Info,
                                 id: strawberry.ID | None = None) -> AsyncGenerator[PanelCase, None]:
        async for view in live_rules.panel_updates(info.context, id):
            yield PanelCase.from_view(view)
