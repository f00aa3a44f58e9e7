"""Logging, set up once per process: JSON lines by default, or a pretty form for people.

JSON lines carry ``timestamp``, ``level``, ``target`` (the logger name), ``fields`` (``message`` and
any structured extras) and, inside a task, a ``span`` object, so the runbook's ``jq`` queries work.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from agent2389.protocol.sanitize import sanitize_error_message

_span: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("span", default=None)
_secrets: list[str] = []


@contextmanager
def span(name: str, **attributes: Any) -> Iterator[dict[str, Any]]:
    """Attach ``span`` to every log line written inside the block."""
    current = {"name": name, **{k: v for k, v in attributes.items() if v is not None}}
    token = _span.set(current)
    try:
        yield current
    finally:
        _span.reset(token)


def log_fields(**fields: Any) -> dict[str, Any]:
    """``logger.info(msg, extra=log_fields(duration_ms=12))`` puts the values under ``fields``."""
    return {"fields": fields}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = {"message": _scrub(record.getMessage())}
        fields.update(getattr(record, "fields", {}) or {})
        line: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat().replace("+00:00", "Z"),
            "level": record.levelname,
            "target": record.name,
            "fields": fields,
        }
        current = _span.get()
        if current:
            line["span"] = current
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            fields["error"] = f"{type(exc).__name__}: {sanitize_error_message(exc, _secrets)}"
        return json.dumps(line, default=str, ensure_ascii=False)


class PrettyFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        extras = getattr(record, "fields", {}) or {}
        current = _span.get() or {}
        context = " ".join(f"{k}={v}" for k, v in {**current, **extras}.items() if k != "name")
        stamp = datetime.fromtimestamp(record.created).strftime("%H:%M:%S.%f")[:-3]
        text = f"{stamp} {record.levelname:<7} {record.name}: {_scrub(record.getMessage())}"
        if record.exc_info and record.exc_info[1] is not None:
            text += f" [{type(record.exc_info[1]).__name__}: {sanitize_error_message(record.exc_info[1], _secrets)}]"
        return f"{text}  {context}".rstrip()


def _scrub(message: str) -> str:
    for secret in _secrets:
        message = message.replace(secret, "[redacted]")
    return message


def setup_logging(level: str = "INFO", fmt: str = "json", secrets: list[str] | None = None) -> None:
    """Configure the root logger once; ``secrets`` are never written, whatever logs them."""
    _secrets[:] = [s for s in (secrets or []) if len(s) >= 4]
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(PrettyFormatter() if fmt == "pretty" else JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Library warnings become log lines too: every line a process writes is JSON in JSON mode.
    logging.captureWarnings(True)
    for noisy in ("httpx", "httpcore", "httpx2", "httpcore2", "anthropic", "urllib3"):
        logging.getLogger(noisy).setLevel(max(root.level, logging.WARNING))
