"""Uploaded document content in MongoDB, in sealed chunks (the `document_contents` collection).

Instances share nothing but the store, and a file never lands on local disk: the content arrives in memory,
is cut into chunks of at most CHUNK_BYTES (so a sealed chunk, with its 16-byte tag, stays within 1 MiB and far
below MongoDB's 16 MiB document limit) and each chunk is sealed with AES-256-GCM by the field cipher
(stores/protection.py), bound to (case, document, content SHA-256, chunk index): a chunk copied to another
document, another version or another position does not open.

A version of a document's content is keyed by its SHA-256; the case's document names the version it shows
(`sha256`, `size`), so chunks are written before the event that points to them, and a writer that stops half way
leaves chunks nobody points to, completed by the same upload sent again (a chunk's id is its position, written
once). Earlier versions stay: what the bank was sent is kept as it was.
"""
from __future__ import annotations

import hashlib
from typing import Any

from pymongo import ASCENDING, IndexModel

from stores.database import Database
from stores.protection import FieldCipher, SealedValueError, aad_for

COLLECTION = "document_contents"
TAG_BYTES = 16
CHUNK_BYTES = 1024 * 1024 - TAG_BYTES
INDEXES = [IndexModel([("caseId", ASCENDING), ("documentId", ASCENDING), ("sha256", ASCENDING),
                       ("index", ASCENDING)], name="case_document_version_index")]


def _chunk_aad(case_id: str, document_id: str, sha256: str, index: int) -> str:
    return aad_for(COLLECTION, f"{case_id}/{document_id}/{sha256}", f"chunk/{index}")


def _chunk_id(case_id: str, document_id: str, sha256: str, index: int) -> str:
    return f"{case_id}/{document_id}/{sha256}/{index}"


class DocumentContentStore:
    def __init__(self, db: Database, cipher: FieldCipher) -> None:
        self._chunks = db.collection(COLLECTION)
        self._cipher = cipher

    async def ensure_indexes(self) -> None:
        await self._chunks.create_indexes(INDEXES)

    async def put(self, case_id: str, document_id: str, content: bytes) -> str:
        """Store `content` as one version of the document; its SHA-256 (hex), which names the version."""
        sha256 = hashlib.sha256(content).hexdigest()
        count = max(1, -(-len(content) // CHUNK_BYTES))
        for index in range(count):
            piece = content[index * CHUNK_BYTES:(index + 1) * CHUNK_BYTES]
            sealed = self._cipher.seal_bytes(piece, aad=_chunk_aad(case_id, document_id, sha256, index))
            # $setOnInsert: the same upload sent again (or by a second instance at once) keeps the first copy.
            await self._chunks.update_one(
                {"_id": _chunk_id(case_id, document_id, sha256, index)},
                {"$setOnInsert": {"caseId": case_id, "documentId": document_id, "sha256": sha256, "index": index,
                                  "count": count, "sealed": sealed}},
                upsert=True)
        return sha256

    async def get(self, case_id: str, document_id: str, sha256: str, size: int) -> bytes:
        """The content of that version, checked whole (every chunk, the size, the SHA-256); SealedValueError when a
        chunk is missing, altered or moved."""
        chunks = await self._chunks.find(
            {"caseId": case_id, "documentId": document_id, "sha256": sha256}).sort("index", ASCENDING).to_list(None)
        where = f"{COLLECTION}/{case_id}/{document_id}/{sha256}"
        expected = max(1, -(-size // CHUNK_BYTES))
        if [c["index"] for c in chunks] != list(range(expected)):
            raise SealedValueError(f"{where}: {len(chunks)} of {expected} chunks stored")
        content = b"".join(self._cipher.open_bytes(c["sealed"], aad=_chunk_aad(case_id, document_id, sha256,
                                                                                 c["index"])) for c in chunks)
        if len(content) != size or hashlib.sha256(content).hexdigest() != sha256:
            raise SealedValueError(f"{where}: the content does not match its size and SHA-256")
        return content

    async def stored(self, case_id: str, document_id: str) -> list[dict[str, Any]]:
        """The raw chunks of a document, all versions (for operators and tests: what is at rest)."""
        return await self._chunks.find({"caseId": case_id, "documentId": document_id}).sort(
            [("sha256", ASCENDING), ("index", ASCENDING)]).to_list(None)
