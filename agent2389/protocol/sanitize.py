"""Make any error text safe to publish (PROTOCOL.md §3).

Published errors are read by other agents and people we do not know: they must never carry stack
traces, file paths, hostnames, URLs, API keys, tokens or passwords, and are at most 500 characters
of valid UTF-8. Secrets are found two ways: the exact values of the agent's configured secret
variables, and by their shape (:mod:`agent2389.protocol.secret_shapes`: key=value and "key is value" for
secret-ish names, URL userinfo, host:port, known token formats, absolute paths). Traceback lines go
first, whole. What is left is one line a person can still read.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable

from agent2389.protocol.secret_shapes import CLASSES, LATE_CLASSES, REDACTED, redact_keyed

MAX_CHARS = 500
MIN_SECRET_CHARS = 6
# The classes run on at most this much text; the rest could never reach the 500 published characters.
MAX_SCANNED_CHARS = 4000
_FALLBACK = "an internal error occurred"

_TRACEBACK_HEADER = re.compile(
    r"^\s*(?:Traceback \(most recent call last\):|During handling of the above exception|"
    r"The above exception was the direct cause|\+?-* ?\+?Exception Group Traceback)"
)
_FRAME = re.compile(r"^\s*File \".*\", line \d+")


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
    raw = text if isinstance(text, str) else str(text) if isinstance(text, BaseException) else repr(text)
    clean = raw.encode("utf-8", "replace").decode("utf-8", "replace")
    clean = _remove_secrets(clean, secrets)
    clean = " ".join(" ".join(without_tracebacks(clean.splitlines())).split())
    clean = _first_words(clean, MAX_SCANNED_CHARS)
    for pattern, replacement in CLASSES:
        clean = pattern.sub(replacement, clean)
    clean = redact_keyed(clean)
    for pattern, replacement in LATE_CLASSES:
        clean = pattern.sub(replacement, clean)
    clean = "".join(ch for ch in clean if ch.isprintable())
    clean = _remove_secrets(clean, secrets)
    if not clean.strip(" .:;,"):
        return _FALLBACK
    if len(clean) > MAX_CHARS:
        clean = clean[: MAX_CHARS - 1] + "…"
    return clean


def without_tracebacks(lines: list[str]) -> list[str]:
    """Drop traceback headers, ``File "…", line N`` frames and the indented source and caret lines under
    them; keep the exception line that ends a traceback (it says what went wrong)."""
    kept: list[str] = []
    in_traceback = False
    for line in lines:
        if _TRACEBACK_HEADER.match(line) or _FRAME.match(line):
            in_traceback = True
            continue
        if in_traceback and (line[:1].isspace() or not line.strip()):
            continue
        in_traceback = False
        kept.append(line)
    return kept


def _first_words(text: str, limit: int) -> str:
    """At most ``limit`` characters, cut at a space so that no token is left half-recognisable."""
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0]


def _remove_secrets(text: str, secrets: list[str]) -> str:
    # Replacing can, in contrived cases, assemble a secret anew from its neighbours: repeat to a
    # fixed point, and give up on the whole text rather than publish what might be a secret.
    for _ in range(8):
        found = [s for s in secrets if s in text]
        if not found:
            return text
        for secret in sorted(found, key=len, reverse=True):
            text = text.replace(secret, REDACTED)
    return _FALLBACK if any(s in text for s in secrets) else text
