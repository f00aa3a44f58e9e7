"""Logging, set up once per process: JSON lines by default, or a pretty form for people.

JSON lines carry ``timestamp``, ``level``, ``target`` (the logger name), ``fields`` (``message`` and
any structured extras) and, inside a task, a ``span`` object, so the runbook's ``jq`` queries work.

A worker process writes its lines from one thread (:func:`write_logs_in_background`): a thread that logs
only queues its record. With the stream's handler called directly, hundreds of task threads queued on its
lock (a third of a fan-in worker's threads at once, docs/performance.md), each holder waiting for the
interpreter mid-write. Other processes write in place, so a line and a message printed after it stay in order.
"""

from __future__ import annotations

import atexit
import contextvars
import json
import logging
import queue
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from logging.handlers import QueueHandler, QueueListener
from typing import Any

from agent2389.protocol.sanitize import sanitize_error_message

_span: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("span", default=None)
_secrets: list[str] = []
# The record attribute that carries the logging thread's span to the writer thread.
_SPAN_ATTR = "agent2389_span"


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
        current = _span_of(record)
        if current:
            line["span"] = current
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            fields["error"] = f"{type(exc).__name__}: {sanitize_error_message(exc, _secrets)}"
        return json.dumps(line, default=str, ensure_ascii=False)


class PrettyFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        extras = getattr(record, "fields", {}) or {}
        current = _span_of(record) or {}
        context = " ".join(f"{k}={v}" for k, v in {**current, **extras}.items() if k != "name")
        stamp = datetime.fromtimestamp(record.created).strftime("%H:%M:%S.%f")[:-3]
        text = f"{stamp} {record.levelname:<7} {record.name}: {_scrub(record.getMessage())}"
        if record.exc_info and record.exc_info[1] is not None:
            text += f" [{type(record.exc_info[1]).__name__}: {sanitize_error_message(record.exc_info[1], _secrets)}]"
        return f"{text}  {context}".rstrip()


def _span_of(record: logging.LogRecord) -> dict[str, Any] | None:
    if _SPAN_ATTR in record.__dict__:
        return record.__dict__[_SPAN_ATTR]  # type: ignore[no-any-return]
    return _span.get()


def _scrub(message: str) -> str:
    for secret in _secrets:
        message = message.replace(secret, "[redacted]")
    return message


class _Enqueue(QueueHandler):
    """Puts records on the writer's queue, with the span of the thread that logged them."""

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        current = _span.get()
        # A copy: the span's block may still change its attributes after the line was logged.
        setattr(record, _SPAN_ATTR, dict(current) if current else None)
        return record

    def handle(self, record: logging.LogRecord) -> bool:
        # The queue is thread-safe: no handler lock for the logging threads to wait on.
        if not self.filter(record):
            return False
        self.emit(record)
        return True


class _Writer:
    """The one thread that writes this process's log lines."""

    def __init__(self) -> None:
        self._listener: QueueListener | None = None

    def start(self, records: queue.SimpleQueue[logging.LogRecord], *handlers: logging.Handler) -> None:
        self.stop()
        self._listener = QueueListener(records, *handlers)
        self._listener.start()

    def flush(self) -> None:
        """Write every line queued so far; the writer goes on writing what comes after."""
        if self._listener is not None:
            self._listener.stop()
            self._listener.start()

    def stop(self) -> None:
        if self._listener is not None:
            self._listener.stop()
            self._listener = None


_writer = _Writer()
atexit.register(_writer.stop)


def flush_logs() -> None:
    """Every line logged so far is written when this returns: call it before ``os._exit`` or a message on
    stderr that must follow them."""
    _writer.flush()


def write_logs_in_background() -> None:
    """From now on the handlers :func:`setup_logging` installed are called by one writer thread, in order; a
    thread that logs only queues its record. Lines still queued are written at exit and by :func:`flush_logs`.
    A second call changes nothing."""
    root = logging.getLogger()
    if any(isinstance(handler, _Enqueue) for handler in root.handlers):
        # Already in the background: a second writer's handler would be the first one's queue.
        return
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    _writer.start(records, *root.handlers)
    root.handlers[:] = [_Enqueue(records)]


def setup_logging(level: str = "INFO", fmt: str = "json", secrets: list[str] | None = None) -> None:
    """Configure the root logger once; ``secrets`` are never written, whatever logs them."""
    # The lines already queued are written with the secrets they were logged under.
    _writer.stop()
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
