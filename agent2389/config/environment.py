"""The environment variables agent2389 reads: one prefix, ``AGENT2389_``, and the names of earlier releases.

Earlier releases read a few settings under plain names (``REDIS_URL``, ``LOG_LEVEL``, …). Those still work,
so no deployment breaks on upgrade, but the ``AGENT2389_`` name wins when both are set. A variable set to
the empty string counts as not set (compose's ``${VAR:-}`` passes empty strings).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

REDIS_URL = "AGENT2389_REDIS_URL"
MQTT_URL = "AGENT2389_MQTT_URL"
KEY_PREFIX = "AGENT2389_KEY_PREFIX"
LOG_LEVEL = "AGENT2389_LOG_LEVEL"
LOG_FORMAT = "AGENT2389_LOG_FORMAT"
WEB_PORT = "AGENT2389_WEB_PORT"
WEB_AUTH_TOKEN = "AGENT2389_WEB_AUTH_TOKEN"  # noqa: S105 (a variable's name, not a token)
VISIBILITY_TIMEOUT = "AGENT2389_VISIBILITY_TIMEOUT"
REVERIFY_INTERVAL = "AGENT2389_REVERIFY_INTERVAL"
CELERY_EVENTS = "AGENT2389_CELERY_EVENTS"
STATUS_HEARTBEAT = "AGENT2389_STATUS_HEARTBEAT"
PROGRESS_EVENTS = "AGENT2389_PROGRESS_EVENTS"
# Set by ``agent2389 up`` for its children when the broker it started speaks only MQTT 3.1.1.
MQTT_PROTOCOL = "AGENT2389_MQTT_PROTOCOL"

# The plain names of earlier releases, read when the AGENT2389_ name is not set.
ALIASES = {
    REDIS_URL: "REDIS_URL",
    MQTT_URL: "MQTT_URL",
    LOG_LEVEL: "LOG_LEVEL",
    LOG_FORMAT: "LOG_FORMAT",
    WEB_PORT: "HEALTH_PORT",
    WEB_AUTH_TOKEN: "WEB_AUTH_TOKEN",
}

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_FORMATS = ("json", "pretty")


def names(name: str) -> tuple[str, ...]:
    """``name`` and its older alias, if it has one: the variables that may hold the setting."""
    alias = ALIASES.get(name)
    return (name, alias) if alias else (name,)


def lookup(name: str, environ: Mapping[str, str] | None = None) -> tuple[str, str] | None:
    """The variable that sets ``name`` (itself or its alias) and its value; None when neither is set."""
    env = os.environ if environ is None else environ
    for variable in names(name):
        value = env.get(variable)
        if value:
            return variable, value
    return None


def value(name: str, default: str, environ: Mapping[str, str] | None = None) -> str:
    found = lookup(name, environ)
    return found[1] if found else default
