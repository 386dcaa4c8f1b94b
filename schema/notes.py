"""Notes on a case or a customer, and the mutations that write them (rules in resolvers/notes.py)."""
from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry
from strawberry.types import Info

from access.sensitive_text import shown_text
from resolvers import notes as note_rules


@strawberry.type
class NoteVersion:
    at: datetime
    note_id: strawberry.Private[str]
    stored: strawberry.Private[dict[str, Any]]

    @strawberry.field
    def text(self, info: Info) -> str:
        return shown_text(info.context, "NoteVersion.text", self.stored, ["text"], self.stored["text"],
                          lambda: note_rules.note_aad(self.note_id))


@strawberry.type
class Note:
    id: strawberry.ID
    stored: strawberry.Private[dict[str, Any]]
    author: str = strawberry.field(description="The author's username.")
    channel: str | None
    at: datetime = strawberry.field(description="When the note was added.")
    edited_at: datetime | None = strawberry.field(description="When its text was last changed, if ever.")
    case_id: strawberry.ID | None
    customer_id: strawberry.ID
    versions: list[NoteVersion] = strawberry.field(description="Its earlier texts, oldest first.")

    # A PESEL or phone in a note was redacted when written; the policy decides who reads it back.
    @strawberry.field
    def text(self, info: Info) -> str:
        return shown_text(info.context, "Note.text", self.stored, ["text"], self.stored["text"],
                          lambda: note_rules.note_aad(self.id))

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Note:
        return cls(id=doc["_id"], stored=doc, author=doc["author"], channel=doc.get("channel"), at=doc["at"],
                   edited_at=doc.get("editedAt"), case_id=doc.get("caseId"), customer_id=doc["customerId"],
                   versions=[NoteVersion(at=v["at"], note_id=doc["_id"], stored=v) for v in doc.get("versions") or ()])


@strawberry.type
class NoteMutations:
    @strawberry.mutation(description="Write a note on a case or on a customer (exactly one of them).")
    async def add_note(self, info: Info, case_id: strawberry.ID | None = None,
                       customer_id: strawberry.ID | None = None, *, text: str) -> Note:
        return Note.from_doc(await note_rules.add_note(info.context, case_id, customer_id, text))

    @strawberry.mutation(description="Change the text of your note; the old text is kept in `versions`.")
    async def edit_note(self, info: Info, note_id: strawberry.ID, text: str) -> Note:
        return Note.from_doc(await note_rules.edit_note(info.context, note_id, text))

    @strawberry.mutation(description="Delete your note; it is no longer listed.")
    async def delete_note(self, info: Info, note_id: strawberry.ID) -> bool:
        return await note_rules.delete_note(info.context, note_id)
