"""Check every audit chain: `python audit_verify.py [--anchor FILE]` prints one JSON line.

The line has the overall verdict and one report per chain (a writer's chain per server process that ever wrote,
plus the legacy chain of records from before chains were per writer): records checked, the first broken record
and why, and the head (`head_id`, `head_seq`, `head_hash`) that verified. Keep that line somewhere the database's
administrators cannot edit (a log, a ticket): given back as `--anchor FILE`, every chain it names must still reach
its anchored head with the same hash, so a cut-off tail or a removed chain shows as broken.

Exit code 0: every chain is intact; 1: one is broken (its report names the first broken record); 2: the check
could not run (store unreachable, bad settings, unreadable anchor), so nothing is known about the chains.
It reads MONGODB_URI / MONGODB_DATABASE like the server. Without MONGODB_URI there is nothing it could read (the
embedded store lives inside the server's process), so it says so with exit code 2.
"""
from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, TextIO

import orjson
from pymongo.errors import PyMongoError

from settings import Settings
from stores.audit import Anchor, AuditStore
from stores.database import Database, connect

EXIT_OK, EXIT_BROKEN, EXIT_NOT_CHECKED = 0, 1, 2


async def verify_audit(database: Database, anchors: Mapping[str, Anchor] | None = None) -> tuple[dict[str, Any], int]:
    """The report as a JSON-ready dict, and the exit code it calls for."""
    try:
        report = await AuditStore(database, writer="audit-verify").verify(anchors)
    except PyMongoError as error:
        return {"ok": False, "error": f"store: {type(error).__name__}: {error}"}, EXIT_NOT_CHECKED
    return asdict(report), EXIT_OK if report.ok else EXIT_BROKEN


def anchors_from(report: Mapping[str, Any]) -> dict[str, Anchor]:
    """The heads of an earlier report (this command's output line) as anchors; ValueError if it is not one."""
    chains = report.get("chains")
    if not isinstance(chains, list):
        raise ValueError("anchor: not an audit_verify.py report (no chains)")
    anchors = {}
    for chain in chains:
        try:
            writer, seq, head_hash = chain["writer"], chain["head_seq"], chain["head_hash"]
        except (KeyError, TypeError) as error:
            raise ValueError(f"anchor: a chain without writer, head_seq and head_hash: {chain!r}") from error
        if not (isinstance(writer, str) and isinstance(seq, int) and isinstance(head_hash, str)):
            raise ValueError(f"anchor: a chain with a malformed head: {chain!r}")
        if seq:
            anchors[writer] = Anchor(seq, head_hash)
    return anchors


def main(env: Mapping[str, str] | None = None, database: Database | None = None, out: TextIO | None = None,
         argv: Sequence[str] = ()) -> int:
    """Verify the chains in the configured store, print the result as one JSON line, return the exit code."""
    parser = argparse.ArgumentParser(description="Verify every audit chain.")
    parser.add_argument("--anchor", type=Path, help="an earlier output line: every chain must still reach its head")
    options = parser.parse_args(list(argv))
    write = (out or sys.stdout).write
    settings = Settings.from_env(env)
    if database is None and settings.mongodb_uri is None:
        # The embedded store lives inside the server's process: a new process would find it empty and say "ok, 0".
        write(orjson.dumps({
            "ok": False, "error": "MONGODB_URI is not set: the embedded store is inside the server process and "
                                  "cannot be checked from here"}).decode() + "\n")
        return EXIT_NOT_CHECKED
    try:
        anchors = anchors_from(orjson.loads(options.anchor.read_bytes())) if options.anchor else None
    except (OSError, ValueError) as error:  # orjson.JSONDecodeError is a ValueError
        write(orjson.dumps({"ok": False, "error": f"{type(error).__name__}: {error}"}).decode() + "\n")
        return EXIT_NOT_CHECKED
    owned = database is None
    database = database or connect(settings.mongodb_uri, settings.mongodb_database)
    try:
        result, code = asyncio.run(verify_audit(database, anchors))
    finally:
        if owned:
            database.close()
    write(orjson.dumps(result).decode() + "\n")
    return code


if __name__ == "__main__":
    try:
        sys.exit(main(argv=sys.argv[1:]))
    except (ValueError, OSError, PyMongoError) as failure:
        # A crash would exit with 1, which means "broken": say "not checked" instead.
        print(orjson.dumps({"ok": False, "error": f"{type(failure).__name__}: {failure}"}).decode())
        sys.exit(EXIT_NOT_CHECKED)
