"""Make any error text safe to publish (PROTOCOL.md §3).

Published errors are read by other agents and people we do not know: they must never carry stack
traces, file paths, hostnames, URLs, API keys, tokens or passwords, and are at most 500 characters
of valid UTF-8.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable

MAX_CHARS = 500
MIN_SECRET_CHARS = 6
_FALLBACK = "an internal error occurred"
_REDACTED = "[redacted]"

_TRACEBACK_LINE = re.compile(r"^\s*(Traceback \(most recent call last\)|File \".*\", line \d+|\^+\s*$)")
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\b[a-z][a-z0-9+.-]*://\S+", re.IGNORECASE), "[url]"),
    (re.compile(r"\b(?:sk|pk|rk)-[A-Za-z0-9_-]{8,}"), _REDACTED),
    (re.compile(r"\b(?:bearer|basic)\s+[A-Za-z0-9._~+/=-]{6,}", re.IGNORECASE), _REDACTED),
    (
        re.compile(
            r"\b(api[_-]?key|token|secret|password|passwd|pwd|authorization|x-api-key)"
            r"(\s*[=:]\s*|\s+)(\"[^\"]*\"|'[^']*'|\S+)",
            re.IGNORECASE,
        ),
        r"\1=" + _REDACTED,
    ),
    (re.compile(r"\b[A-Za-z0-9_-]{20,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\b"), _REDACTED),
    (re.compile(r"\b[A-Za-z0-9+/_-]{40,}={0,2}"), _REDACTED),
    (re.compile(r"(?:[A-Za-z]:)?(?:[\\/][\w.@~-]+){2,}[\\/]?|~[\\/][\w./-]+"), "[path]"),
    (re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b"), "[host]"),
    (re.compile(r"\[?[0-9a-fA-F]{0,4}(?::[0-9a-fA-F]{0,4}){2,7}\]?(?::\d+)?"), "[host]"),
    (re.compile(r"\b(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+(?:com|net|org|io|ai|dev|local|internal|"
                r"lan|cloud|svc|cluster|[a-z]{2})(?::\d+)?\b", re.IGNORECASE), "[host]"),
    (re.compile(r"\blocalhost(?::\d+)?\b", re.IGNORECASE), "[host]"),
)


def environment_secrets(names: Iterable[str], environ: dict[str, str] | None = None) -> list[str]:
    """The values of the named environment variables that are long enough to be secrets."""
    env = os.environ if environ is None else environ
    return [env[name] for name in names if len(env.get(name, "")) >= MIN_SECRET_CHARS]


def sanitize_error_message(text: object, secrets: Iterable[str] = ()) -> str:
    """A short, single-line, publishable version of ``text``. Never raises."""
    try:
        return _sanitize(text, [s for s in secrets if len(s) >= MIN_SECRET_CHARS])
    except Exception:
        return _FALLBACK


def _sanitize(text: object, secrets: list[str]) -> str:
    raw = text if isinstance(text, str) else repr(text) if not isinstance(text, BaseException) else str(text)
    clean = raw.encode("utf-8", "replace").decode("utf-8", "replace")
    clean = _remove_secrets(clean, secrets)
    kept = [line for line in clean.splitlines() if not _TRACEBACK_LINE.match(line)]
    clean = " ".join(" ".join(kept).split())
    for pattern, replacement in _PATTERNS:
        clean = pattern.sub(replacement, clean)
    clean = "".join(ch for ch in clean if ch.isprintable())
    clean = _remove_secrets(clean, secrets)
    if not clean:
        return _FALLBACK
    if len(clean) > MAX_CHARS:
        clean = clean[: MAX_CHARS - 1] + "…"
    return clean


def _remove_secrets(text: str, secrets: list[str]) -> str:
    # Replacing can, in contrived cases, assemble a secret anew from its neighbours: repeat to a
    # fixed point, and give up on the whole text rather than publish what might be a secret.
    for _ in range(8):
        found = [s for s in secrets if s in text]
        if not found:
            return text
        for secret in sorted(found, key=len, reverse=True):
            text = text.replace(secret, _REDACTED)
    return _FALLBACK if any(s in text for s in secrets) else text
