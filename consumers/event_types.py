"""The data of each inbound event type (CONTRACT §2), validated with pydantic."""
from __future__ import annotations

from decimal import Decimal
from enum import Enum
import re
import unicodedata
from typing import Annotated, Any

# AwareDatetime for every time: a naive one cannot be ordered against the others (history, stamps) and would
# fail the whole batch instead of going to the DLQ.
from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from consumers.pesel import pesel_problem

NonEmpty = Field(min_length=1)
_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")


def _valid_pesel(value: str) -> str:
    problem = pesel_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


def _valid_phone(value: str) -> str:
    # The OTP for the Customer Panel goes to this number: only an E.164 number can be dialled.
    if not _E164.match(value):
        raise ValueError("phone: must be an E.164 number such as +48601200300")
    return value


_CODE = re.compile(r"^[A-Z0-9][A-Z0-9_-]{0,63}$")


def canonical_code(value: str) -> str:
    """A case type, channel or branch in the one form the policy compares: Unicode-compatible characters folded
    (full-width letters), invisible format characters (zero-width space, joiners) removed, blanks trimmed, upper
    case. `leasing`, `LEASING `, `ＬＥＡＳＩＮＧ` and `LEA\u200bSING` are all LEASING, so no spelling of a
    restricted case type escapes the rule that restricts it."""
    folded = "".join(c for c in unicodedata.normalize("NFKC", value) if unicodedata.category(c) != "Cf")
    code = folded.strip().upper()
    if not _CODE.match(code):
        raise ValueError(f"{value!r} is not a code: letters, digits, _ and -, at most 64 (e.g. MORTGAGE, KRK-01)")
    return code


Pesel = Annotated[str, AfterValidator(_valid_pesel)]
Code = Annotated[str, AfterValidator(canonical_code)]
Phone = Annotated[str, AfterValidator(_valid_phone)]


class Data(BaseModel):
    # Unknown keys are refused so that a producer's typo is a DLQ reason, not silently lost data.
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ActorType(str, Enum):
    USER = "USER"
    SYSTEM = "SYSTEM"
    CUSTOMER = "CUSTOMER"


class Outcome(str, Enum):
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"
    CANCELLED = "CANCELLED"
    COMPLETED = "COMPLETED"
    EXPIRED = "EXPIRED"


class Customer(Data):
    id: str = NonEmpty
    name: str = NonEmpty
    pesel: Pesel | None = None
    segment: str | None = None


class CustomerChange(Data):
    id: str | None = None
    name: str | None = None
    pesel: Pesel | None = None
    segment: str | None = None


class Product(Data):
    code: str = NonEmpty
    name: str = NonEmpty
    amount: Decimal | None = None
    currency: str | None = Field(default=None, min_length=3, max_length=3)


class Participant(Data):
    id: str = NonEmpty
    role: str = NonEmpty
    name: str = NonEmpty
    phone: Phone | None = None
    pesel: Pesel | None = None


class Process(Data):
    engine: str = NonEmpty
    definitionKey: str = NonEmpty
    instanceId: str = NonEmpty
    bpmnUrl: str | None = None


class Form(Data):
    id: str = NonEmpty
    key: str = NonEmpty
    name: str | None = None
    url: str | None = None
    status: str | None = None


class Document(Data):
    id: str = NonEmpty
    name: str = NonEmpty
    kind: str = NonEmpty
    status: str = NonEmpty
    participantId: str | None = None
    url: str | None = None
    required: bool = False


class Task(Data):
    id: str = NonEmpty
    name: str = NonEmpty
    formKey: str | None = None
    candidateGroups: list[str] = []
    assignee: str | None = None
    participantId: str | None = None
    dueAt: AwareDatetime | None = None
    state: str = "CREATED"
    # Higher is more urgent; a task without one is the least urgent (an int32, as the engines keep it).
    priority: int | None = Field(default=None, ge=-(2**31), le=2**31 - 1)


class TaskChange(Data):
    id: str = NonEmpty
    name: str | None = None
    formKey: str | None = None
    candidateGroups: list[str] | None = None
    assignee: str | None = None
    participantId: str | None = None
    dueAt: AwareDatetime | None = None
    state: str | None = None
    priority: int | None = Field(default=None, ge=-(2**31), le=2**31 - 1)


class Incident(Data):
    id: str = NonEmpty
    kind: str = NonEmpty
    message: str = NonEmpty
    service: str | None = None
    retryable: bool = False
    at: AwareDatetime


class IncidentResolution(Data):
    id: str = NonEmpty
    at: AwareDatetime | None = None
    message: str | None = None


class Consent(Data):
    id: str = NonEmpty
    participantId: str = NonEmpty
    kind: str = NonEmpty
    text: str = NonEmpty
    required: bool = False


class Offer(Data):
    id: str = NonEmpty
    productCode: str = NonEmpty
    name: str = NonEmpty
    amount: Decimal | None = None
    currency: str | None = None
    rate: Decimal | None = None
    termMonths: int | None = Field(default=None, gt=0)
    validUntil: AwareDatetime | None = None
    status: str = NonEmpty


class Actor(Data):
    type: ActorType
    id: str = NonEmpty
    name: str | None = None


class Action(Data):
    id: str = NonEmpty
    kind: str = NonEmpty
    actor: Actor
    channel: Code
    at: AwareDatetime
    summary: str = NonEmpty
    details: dict[str, Any] | None = None


class CaseCreated(Data):
    caseType: Code
    title: str = NonEmpty
    channel: Code
    branch: Code | None = None
    restricted: bool = False
    sourceSystem: str = NonEmpty
    customer: Customer
    product: Product
    status: str = NonEmpty
    stage: str = NonEmpty
    participants: list[Participant] = []
    processes: list[Process] = []
    forms: list[Form] = []
    # The case's deadline (descriptive; its holders see it in their calendars).
    dueAt: AwareDatetime | None = None


class CaseUpdated(Data):
    caseType: Code | None = None
    title: str | None = None
    channel: Code | None = None
    branch: Code | None = None
    restricted: bool | None = None
    sourceSystem: str | None = None
    customer: CustomerChange | None = None
    product: Product | None = None
    stage: str | None = None
    processes: list[Process] | None = None
    forms: list[Form] | None = None
    dueAt: AwareDatetime | None = None  # null clears the deadline

    @model_validator(mode="after")
    def _not_empty(self) -> CaseUpdated:
        if not self.model_fields_set:
            raise ValueError("case.updated needs at least one field to change")
        return self


class StatusChanged(Data):
    status: str = NonEmpty
    stage: str | None = None
    reason: str | None = None


class ActionRecorded(Data):
    action: Action


class ParticipantAdded(Data):
    participant: Participant


class DocumentLinked(Data):
    document: Document


class TaskCreated(Data):
    task: Task


class TaskUpdated(Data):
    task: TaskChange


class IncidentRaised(Data):
    incident: Incident


class IncidentResolved(Data):
    incident: IncidentResolution


class CaseClosed(Data):
    outcome: Outcome
    at: AwareDatetime


class CaseReopened(Data):
    reason: str | None = None
    status: str = NonEmpty
    stage: str | None = None

    @field_validator("status")
    @classmethod
    def _not_closed(cls, value: str) -> str:
        # A reopened case is open: CLOSED here would leave the status saying closed with no closedAt and outcome.
        if value == "CLOSED":
            raise ValueError("a reopened case cannot have status CLOSED")
        return value


class ConsentRequested(Data):
    consent: Consent


class OfferPresented(Data):
    offer: Offer


class IncidentReference(Data):
    id: str = NonEmpty


class Requester(Data):
    id: str = NonEmpty
    name: str = NonEmpty


class IncidentRetryRequested(Data):
    incident: IncidentReference
    requestedBy: Requester
    channel: str | None = None
    attempt: int = Field(gt=0)


class ItemReference(Data):
    id: str = NonEmpty


class ConsentAnswered(Data):
    """A participant's answer to a consent in the Customer Panel (consumers/panel_acts.py)."""

    consent: ItemReference
    participantId: str = NonEmpty
    granted: bool
    channel: str | None = None


class DocumentUploaded(Data):
    """A participant's upload of a document's content in the Customer Panel (consumers/panel_acts.py)."""

    document: ItemReference
    participantId: str = NonEmpty
    contentType: str = NonEmpty
    size: int = Field(gt=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    channel: str | None = None


DATA_MODELS: dict[str, type[Data]] = {
    "case.created": CaseCreated,
    "case.updated": CaseUpdated,
    "case.status_changed": StatusChanged,
    "case.action_recorded": ActionRecorded,
    "case.participant_added": ParticipantAdded,
    "case.document_linked": DocumentLinked,
    "case.task_created": TaskCreated,
    "case.task_updated": TaskUpdated,
    "case.task_completed": TaskUpdated,
    "case.incident_raised": IncidentRaised,
    "case.incident_resolved": IncidentResolved,
    "case.closed": CaseClosed,
    "case.reopened": CaseReopened,
    "case.consent_requested": ConsentRequested,
    "case.offer_presented": OfferPresented,
    "case.offer_updated": OfferPresented,
}

# Events the repository writes itself (an employee's or a panel participant's act on a case, journaled like any other so a case rebuilt
# as of a moment shows it). Never accepted from producers: a forged retry request would send a command.
INTERNAL_DATA_MODELS: dict[str, type[Data]] = {
    "case.incident_retry_requested": IncidentRetryRequested,
    "case.consent_answered": ConsentAnswered,
    "case.document_uploaded": DocumentUploaded,
}
