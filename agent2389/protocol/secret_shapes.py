"""The shapes secrets and internal details take in error text, one class each, for :mod:`sanitize`.

Each class is a pattern and what replaces it. They are found by shape, not by value: a sanitizer that
only knew the configured secrets would let through every password, token, internal host and path that
reaches an exception some other way (a driver echoing its connection URL, a tool quoting its config).
The classes err on the side of removing too much: an error message loses a word, never a secret.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable

Replacement = str | Callable[[re.Match[str]], str]

REDACTED = "[redacted]"
URL = "[url]"
HOST = "[host]"
PATH = "[path]"

# Components of a key name that say its value is a secret (MQTT_PASSWORD, apiKey, x-api-key, db.pass).
SECRET_COMPONENTS = frozenset({
    "password", "passwd", "pass", "pwd", "passphrase", "secret", "secrets", "token", "tokens", "key", "keys",
    "apikey", "auth", "authorization", "credential", "credentials", "cred", "creds", "cookie", "session",
    "sessionid", "sid", "signature", "sig", "bearer", "jwt", "pat", "otp", "pin", "private", "dsn",
})
# Spelled inside one word too (mqttpassword, accesstoken).
SECRET_INFIXES = ("password", "passwd", "passphrase", "secret", "token", "apikey", "credential", "privatekey")
# Words that, after "<key> is", describe the secret instead of being it: "the token is invalid" stays.
STATE_WORDS = frozenset({
    "a", "an", "the", "not", "no", "none", "null", "nil", "empty", "blank", "missing", "unset", "set", "required",
    "invalid", "valid", "wrong", "incorrect", "correct", "expired", "revoked", "disabled", "enabled", "unknown",
    "too", "malformed", "rejected", "accepted", "needed", "absent", "present", "configured", "unavailable",
    "being", "still", "now", "already", "only", "for", "from", "in", "on", "of", "to", "used", "ok",
})

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def is_secret_key(name: str) -> bool:
    """``MQTT_PASSWORD``, ``db_pass``, ``apiKey``, ``X-Api-Key``, ``client.secret`` name secrets; ``passed``
    does not."""
    lowered = name.lower()
    if any(infix in lowered for infix in SECRET_INFIXES):
        return True
    parts = re.split(r"[_.\-]+", _CAMEL.sub("_", name).lower())
    return any(part in SECRET_COMPONENTS for part in parts)


# A value: quoted (any characters up to the closing quote) or one unbroken run; an auth scheme word
# ("Bearer", "Basic", …) before it is part of it, so "Authorization: Bearer abc" loses "abc" too.
_VALUE = r"""(?:(?:bearer|basic|token|digest|negotiate)\s+)?(?:"[^"\n]*"?|'[^'\n]*'?|`[^`\n]*`?|[^\s"'`]+)"""
_KEY = r"""(?P<key>(?<![\w.\-])["']?(?P<name>[A-Za-z_\-][\w.\-]*)["']?)"""
_ASSIGNED = re.compile(rf"{_KEY}(?P<sep>\s*(?::=|=>|->|[=:])\s*|\s+(?=[\"'`]))(?P<value>{_VALUE})", re.IGNORECASE)
_STATED = re.compile(rf"{_KEY}(?P<sep>\s+(?:is|was|are|were)\s+)(?P<value>{_VALUE})", re.IGNORECASE)


def _assigned_is_secret(match: re.Match[str]) -> bool:
    return is_secret_key(match["name"])


def _stated_is_secret(match: re.Match[str]) -> bool:
    return is_secret_key(match["name"]) and match["value"].strip("\"'`.,;:!?()").lower() not in STATE_WORDS


KEYED: tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], bool]], ...] = (
    (_ASSIGNED, _assigned_is_secret),
    (_STATED, _stated_is_secret),
)


def redact_keyed(text: str) -> str:
    """Redact the value of every secret-ish key in ``text``.

    A match whose key is harmless is left as it is and the search goes on *from its value*, which may
    itself start a key ("note: password=…"); ``re.sub`` would have skipped over it.
    """
    for pattern, is_secret in KEYED:
        out: list[str] = []
        position = 0
        while (match := pattern.search(text, position)) is not None:
            if is_secret(match):
                out.append(text[position:match.start("value")] + REDACTED)
                position = match.end()
            else:
                out.append(text[position:match.start("value")])
                position = match.start("value")
        out.append(text[position:])
        text = "".join(out)
    return text


def _userinfo(match: re.Match[str]) -> str:
    """``user:pass@host`` or ``//user@host`` (the password may hold an ``@``); ``bob@example.com`` is left
    to the host classes."""
    left, _, right = match[0].rpartition("@")
    return URL if right and (":" in left or "//" in left) else match[0]


def _random_run(match: re.Match[str]) -> str:
    run = match[0]
    looks_random = any(c.isdigit() for c in run) and any(c.isalpha() for c in run)
    return REDACTED if looks_random else run


def _ipv6(match: re.Match[str]) -> str:
    try:
        ipaddress.IPv6Address(match[0].split("%", 1)[0])
    except ValueError:
        return match[0]  # a clock (12:30:45) or a C++ name, not an address
    return HOST


_HOST_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?"
# Two-letter country domains, but not the file extensions that look like them (notes.md, main.py).
_TLDS = (r"com|net|org|io|ai|dev|app|cloud|local|localdomain|internal|intranet|corp|home|lan|svc|cluster|"
         r"example|invalid|test|(?!(?:md|py|js|ts|sh|rs|go|rb|pl|db|gz|xz|so|cc|hh|id|ok|vs)\b)[a-z]{2}")

# Order matters: whole blocks and URLs go before the key/value forms inside them, and the host and
# path classes go last so that what is left of a redacted value is not mistaken for either.
CLASSES: tuple[tuple[re.Pattern[str], Replacement], ...] = (
    # PEM blocks (private keys, certificates) whole.
    (re.compile(r"-----BEGIN [A-Z0-9 ]+-----.*?(?:-----END [A-Z0-9 ]+-----|$)", re.DOTALL), REDACTED),
    # URLs with a scheme, userinfo and all (redis://user:pass@host:6379/0, https://…?token=…).
    (re.compile(r"\b[a-z][a-z0-9+.\-]*://[^\s\"'<>`]*", re.IGNORECASE), URL),
    # Scheme-relative URLs (//host/path).
    (re.compile(r"(?<![\w:/])//[^\s/\"'<>`]+[^\s\"'<>`]*"), URL),
    # URL userinfo without a scheme: user:pass@host:6379, //user@host, :pass@host.
    (re.compile(r"(?<!\S)\S*@\S+"), _userinfo),
    # Known token shapes.
    (re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|ABIA|ACCA)[A-Z0-9]{12,}\b"), REDACTED),
    (re.compile(r"\b(?:sk|pk|rk|whsec|acct)_(?:live|test)_[A-Za-z0-9]{4,}"), REDACTED),
    (re.compile(r"\b(?:sk|pk|rk)[-_][A-Za-z0-9_\-]{8,}"), REDACTED),
    (re.compile(r"\bxox[abposre]-[A-Za-z0-9\-]{4,}|\bxapp-[A-Za-z0-9\-]{4,}"), REDACTED),
    (re.compile(r"\bAIza[0-9A-Za-z_\-]{16,}"), REDACTED),
    (re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{16,}|github_pat_[A-Za-z0-9_]{16,}|glpat-[A-Za-z0-9_\-]{16,})"), REDACTED),
    (re.compile(r"\beyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+(?:\.[A-Za-z0-9_\-]*)?"), REDACTED),
    (re.compile(r"\b(bearer|basic|digest)\s+[A-Za-z0-9._~+/=\-]{6,}", re.IGNORECASE),
     lambda match: f"{match[1]} {REDACTED}"),
)

# After the keyed forms (redact_keyed), which must see "key=value" before a value is cut up.
LATE_CLASSES: tuple[tuple[re.Pattern[str], Replacement], ...] = (
    # Long random-looking runs (keys, hashes, session ids) whatever their name.
    (re.compile(r"(?<![\w\[])[A-Za-z0-9+/_\-]{24,}={0,2}"), _random_run),
    (re.compile(r"\b[0-9a-fA-F]{32,}\b"), REDACTED),
    # Absolute paths, one level or many: /secrets.txt, ~/x, C:\x, C:/x, \\server\share.
    (re.compile(r"(?<![\w.~/\\\-\]])(?:[A-Za-z]:[\\/]|\\\\|~[\w.\-]*/|/(?=[^\s/]))[^\s\"'`<>|]*"), PATH),
    # IP addresses, with or without a port.
    (re.compile(r"\[[0-9A-Fa-f:.]*:[0-9A-Fa-f:.%\w]*\](?::\d{1,5})?"), HOST),
    (re.compile(r"(?<![\w:])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?:\.\d{1,3}){0,3}(?:%\w+)?(?![\w:])"), _ipv6),
    (re.compile(r"(?<![\d.])\d{1,3}(?:\.\d{1,3}){3}(?::\d{1,5})?(?!\d)"), HOST),
    # Host names: anything with a port, or a dotted name under a known top-level domain, or localhost.
    # (A name starts where no name character precedes it: each dotted run is scanned once.)
    (re.compile(rf"(?<![\w.\-])(?=[\w.\-]*[A-Za-z])(?:{_HOST_LABEL}\.)*{_HOST_LABEL}:\d{{1,5}}\b"), HOST),
    (re.compile(rf"(?<![\w.\-])(?:{_HOST_LABEL}\.)+(?:{_TLDS})\.?\b", re.IGNORECASE), HOST),
    (re.compile(r"\blocalhost\b", re.IGNORECASE), HOST),
)
