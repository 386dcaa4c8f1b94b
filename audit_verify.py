"""Check the audit chain: `python audit_verify.py` prints one JSON line.

Exit code 0: the chain is intact; 1: it is broken (the line names the first broken record); 2: the check
could not run (store unreachable, bad settings), so nothing is known about the chain.
It reads MONGODB_URI / MONGODB_DATABASE like the server. Without MONGODB_URI it checks a fresh in-memory
store, which is always empty: useful only as a smoke test.
"""
from __future__ import annotations

import asyncio
import sys
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any, TextIO

import orjson
from pymongo.errors import PyMongoError

from settings import Settings
from stores.audit import AuditStore
from stores.database import Database, connect

EXIT_OK, EXIT_BROKEN, EXIT_NOT_CHECKED = 0, 1, 2


async def verify_audit(database: Database) -> tuple[dict[str, Any], int]:
    """The report as a JSON-ready dict, and the exit code it calls for."""
    try:
        report = await AuditStore(database).verify()
    except PyMongoError as error:
        return {"ok": False, "error": f"store: {type(error).__name__}: {error}"}, EXIT_NOT_CHECKED
    return asdict(report), EXIT_OK if report.ok else EXIT_BROKEN


def main(env: Mapping[str, str] | None = None, database: Database | None = None, out: TextIO | None = None) -> int:
    """Verify the chain in the configured store, print the result as one JSON line, return the exit code."""
    settings = Settings.from_env(env)
    if database is None and settings.mongodb_uri is None:
        # The embedded store lives inside the server's process: a new process would find it empty and say "ok, 0".
        (out or sys.stdout).write(orjson.dumps({
            "ok": False, "error": "MONGODB_URI is not set: the embedded store is inside the server process and "
                                  "cannot be checked from here"}).decode() + "\n")
        return EXIT_NOT_CHECKED
    owned = database is None
    database = database or connect(settings.mongodb_uri, settings.mongodb_database)
    try:
        result, code = asyncio.run(verify_audit(database))
    finally:
        if owned:
            database.close()
    (out or sys.stdout).write(orjson.dumps(result).decode() + "\n")
    return code


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (ValueError, OSError, PyMongoError) as failure:
        # A crash would exit with 1, which means "broken": say "not checked" instead.
        print(orjson.dumps({"ok": False, "error": f"{type(failure).__name__}: {failure}"}).decode())
        sys.exit(EXIT_NOT_CHECKED)
