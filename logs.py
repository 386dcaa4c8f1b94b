"""Structured JSON logs on stdout: one object per line, with whatever `extra` the caller gave.

While a request is served, `REQUEST_ID` holds its id (set by edge.access_log), so every line logged on its behalf
carries `requestId` and an operator can follow one request from the access log into the errors it caused.
"""
from __future__ import annotations

import logging
import sys
from contextvars import ContextVar
from datetime import datetime, timezone
from typing import Any

import orjson

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}

# A context variable, not an argument: the audit store and deep log calls see it without every caller passing it,
# and tasks started while serving a request (a WebSocket's operations) inherit it.
REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "at": datetime.fromtimestamp(record.created, timezone.utc).isoformat(),
            "level": record.levelname.lower(), "logger": record.name, "message": record.getMessage(),
        }
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        request_id = REQUEST_ID.get()
        if request_id is not None:
            entry.setdefault("requestId", request_id)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # aiohttp's access log would duplicate ours (edge.access_log), which carries the request id and the operation.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
