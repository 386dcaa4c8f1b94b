"""What a customer reads about a case, per case type, as data: the Customer Panel and online banking's `PanelCase`.

Statuses and stages in customer words, the next steps of each stage, the FAQ, the document kinds a participant may
upload, and how long after closing the case stays in the panel. The README's table is generated from `CASE_TYPES`
(`python -m access.panel_views --write`; a test keeps them equal). A status or stage without words here is shown
as "The bank is working on your case" rather than as the bank's internal code.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from generated_sections import with_section

DEFAULT = "*"
UNKNOWN_STATUS = "The bank is working on your case"
# Outcomes of `case.closed` in customer words; the status of a closed case reads as its outcome.
OUTCOMES = {
    "APPROVED": "Approved", "REJECTED": "Not approved", "CANCELLED": "Cancelled", "COMPLETED": "Completed",
    "EXPIRED": "Expired without a decision",
}
# Roles of participants, in the words another participant reads ("the co-borrower has given all consents").
ROLES = {
    "PRIMARY_BORROWER": "the borrower", "CO_BORROWER": "the co-borrower", "APPLICANT": "the applicant",
    "GUARANTOR": "the guarantor", "CUSTOMER": "the customer",
}
_COMMON_STATUSES = {
    "NEW": "Received", "IN_PROGRESS": "In progress", "ON_HOLD": "Waiting", "DECISION": "Decision being made",
    "CLOSED": "Closed", "ARCHIVED": "Closed",
}
_CLOSED_STEPS = ("Your case is closed. You can still read it here until the date shown.",)


@dataclass(frozen=True)
class PanelCaseType:
    """One case type as a customer reads it."""

    name: str
    # Days a closed case stays in the panel and in online banking (0: gone at closing).
    available_days: int
    statuses: dict[str, str] = field(default_factory=lambda: dict(_COMMON_STATUSES))
    stages: dict[str, str] = field(default_factory=dict)
    # What happens next, per stage (falls back to the status, then to nothing).
    next_steps: dict[str, tuple[str, ...]] = field(default_factory=dict)
    faq: tuple[tuple[str, str], ...] = ()
    # Document kinds a participant may upload (part 2: panelUploadDocument).
    uploadable_kinds: frozenset[str] = frozenset()

    def status_text(self, status: str, outcome: str | None) -> str:
        if outcome is not None:
            return OUTCOMES.get(outcome, self.statuses.get("CLOSED", UNKNOWN_STATUS))
        return self.statuses.get(status, UNKNOWN_STATUS)

    def stage_text(self, stage: str | None) -> str | None:
        return None if stage is None else self.stages.get(stage)

    def steps(self, status: str, stage: str | None, closed: bool) -> list[str]:
        if closed:
            return list(_CLOSED_STEPS)
        return list(self.next_steps.get(stage or "", self.next_steps.get(status, ())))

    def available_until(self, closed_at: datetime | None) -> datetime | None:
        """Until when a closed case shows; None while it is open."""
        return None if closed_at is None else closed_at + timedelta(days=self.available_days)


CASE_TYPES: dict[str, PanelCaseType] = {
    "MORTGAGE": PanelCaseType(
        name="Mortgage", available_days=90,
        stages={"APPLICATION": "Application", "ANALYSIS": "The bank is assessing the application",
                "DECISION": "Credit decision", "OFFER": "Offer", "AGREEMENT": "Signing the agreement",
                "APPEAL": "Appeal", "ARCHIVE": "Closed"},
        next_steps={
            "APPLICATION": ("Complete the application with your advisor.",),
            "ANALYSIS": ("Give the consents and send the documents listed here; each borrower does their own.",
                         "The bank checks your income and orders the property valuation."),
            "DECISION": ("The bank makes its credit decision; you will get an SMS when it is ready.",),
            "OFFER": ("Read the offer and contact your advisor to accept it.",),
        },
        faq=(("Why do I sign in to the case and not to internet banking?",
              "Each borrower sees only their own part of the application: their actions, consents and documents."),
             ("How long does the assessment take?",
              "Usually 5 to 10 working days after the last document arrives."),
             ("My co-borrower has not finished yet. What can I do?",
              "Nothing on their behalf: each borrower completes their own part. You can see whether they have.")),
        uploadable_kinds=frozenset({"INCOME_STATEMENT", "EMPLOYMENT_CONTRACT", "ID_DOCUMENT", "BANK_STATEMENT"}),
    ),
    "COMPLAINT": PanelCaseType(
        name="Complaint", available_days=30,
        statuses={**_COMMON_STATUSES, "NEW": "Registered", "IN_PROGRESS": "Being investigated"},
        stages={"REGISTERED": "Registered", "INVESTIGATION": "Being investigated", "ANSWER": "Answer sent",
                "APPEAL": "Appeal"},
        next_steps={
            "REGISTERED": ("The bank investigates your complaint and answers within 30 days.",),
            "INVESTIGATION": ("The bank may ask you for details; you will find the request here.",),
            "APPEAL": ("The bank looks at your appeal again and answers within 30 days.",),
        },
        faq=(("When will I get an answer?", "Within 30 days of registering the complaint, as the law requires."),
             ("Can I appeal the answer?", "Yes, within 30 days of receiving it; contact the bank.")),
        uploadable_kinds=frozenset({"RECEIPT", "BANK_STATEMENT", "CORRESPONDENCE"}),
    ),
    "ACCOUNT_OPENING": PanelCaseType(
        name="Account opening", available_days=0,
        stages={"KYC": "Confirming your identity", "ARCHIVE": "Closed"},
        next_steps={"KYC": ("Confirm your identity with the document your advisor asked for.",)},
        faq=(("When can I use the account?", "As soon as the bank has confirmed your identity."),),
        uploadable_kinds=frozenset({"ID_DOCUMENT"}),
    ),
    "CASH_LOAN": PanelCaseType(
        name="Cash loan", available_days=30,
        stages={"APPLICATION": "Application", "ANALYSIS": "The bank is assessing the application",
                "DECISION": "Credit decision"},
        next_steps={"ANALYSIS": ("Send the documents listed here.",)},
        uploadable_kinds=frozenset({"INCOME_STATEMENT"}),
    ),
    "CREDIT_CARD": PanelCaseType(
        name="Credit card", available_days=30,
        stages={"SCORING": "The bank is checking the application", "DECISION": "Credit decision"},
        next_steps={"SCORING": ("The bank checks the application; you need to do nothing now.",)},
    ),
    # Any other case type: shown, in general words, while open and for 30 days after closing.
    DEFAULT: PanelCaseType(name="Case", available_days=30),
}


def panel_case_type(case_type: str | None) -> PanelCaseType:
    return CASE_TYPES.get(case_type or DEFAULT, CASE_TYPES[DEFAULT])


def role_text(role: str) -> str:
    return ROLES.get(role, "another participant")


def available_until(case: dict[str, Any]) -> datetime | None:
    return panel_case_type(case.get("caseType")).available_until(case.get("closedAt"))


# --- the README table ---------------------------------------------------------------------------------------

BEGIN = "<!-- panel-case-types:begin (generated by `python -m access.panel_views`; a test keeps it in sync) -->"
END = "<!-- panel-case-types:end -->"


def panel_case_types_markdown() -> str:
    lines = ["| case type | in the panel after closing | statuses | stages | next steps by stage | FAQ | "
             "participants may upload |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for case_type, rule in CASE_TYPES.items():
        name = "any other type" if case_type == DEFAULT else f"`{case_type}`"
        statuses = "; ".join(f"`{k}` {v}" for k, v in rule.statuses.items())
        stages = "; ".join(f"`{k}` {v}" for k, v in rule.stages.items()) or "—"
        steps = "; ".join(f"`{k}`: {' '.join(v)}" for k, v in rule.next_steps.items()) or "—"
        faq = "; ".join(q for q, _ in rule.faq) or "—"
        kinds = ", ".join(f"`{k}`" for k in sorted(rule.uploadable_kinds)) or "—"
        lines.append(f"| {name} | {rule.available_days} days | {statuses} | {stages} | {steps} | {faq} | {kinds} |")
    return "\n".join(lines)


def with_panel_case_types(text: str) -> str:
    return with_section(text, BEGIN, END, panel_case_types_markdown())


if __name__ == "__main__":
    from pathlib import Path

    from generated_sections import main

    main(Path(__file__).resolve().parent.parent / "README.md", BEGIN, END, panel_case_types_markdown)
