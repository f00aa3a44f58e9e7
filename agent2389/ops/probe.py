"""``agent2389 health``: one exit code and one line for container health checks and scripts.

By default it asks the web app for the whole system's ``/health`` (200 only when healthy). In a
container it can instead check the process of the container itself (``--role`` or ``--self``): the
web app answers ``/live``, a worker has a fresh heartbeat from this host, the bridge reports an MQTT
connection. One image serves every role, so the image's HEALTHCHECK uses ``--self``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import redis

from agent2389.config.settings import Settings
from agent2389.ops.cli import Command
from agent2389.protocol.errors import ConfigError
from agent2389.protocol.sanitize import sanitize_error_message
from agent2389.state.keys import Keys
from agent2389.state.presence import Presence, read_bridge_state
from agent2389.state.redis_client import connect_redis, probe_role

ROLES = ("web", "bridge", "worker")
MAX_BODY_BYTES = 64 * 1024


@dataclass(frozen=True)
class Verdict:
    healthy: bool
    reason: str

    def line(self) -> str:
        return f"{'healthy' if self.healthy else 'unhealthy'}: {self.reason}"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--url", help="health URL to query (default: http://127.0.0.1:$AGENT2389_WEB_PORT/health)")
    what.add_argument("--role", choices=ROLES, help="check the process of this role running in this container")
    what.add_argument("--self", dest="detect_role", action="store_true",
                      help="check this container's own process, whatever its role (for the image's HEALTHCHECK)")
    parser.add_argument("--timeout", type=float, default=5.0, metavar="SECONDS", help="give up after this long")


def run_health(args: argparse.Namespace) -> int:
    # Exit codes are Docker's: 0 healthy, 1 unhealthy (2 is reserved), so a bad setting is "unhealthy".
    try:
        settings = Settings.from_env(None)
    except ConfigError as exc:
        print(f"unhealthy: {exc}")
        return 1
    verdict = check(settings, args.url, args.role, args.detect_role, args.timeout)
    print(verdict.line())
    return 0 if verdict.healthy else 1


def check(settings: Settings, url: str | None, role: str | None, detect_role: bool, timeout: float) -> Verdict:
    if detect_role:
        cmdline = _process_one_cmdline()
        role = role_of(cmdline)
        if role is None:
            return Verdict(False, "cannot tell this container's role (expected agent2389 web|bridge|worker|up)")
        if role == "web":
            return check_url(f"http://127.0.0.1:{port_of(cmdline, settings.web_port)}/live", timeout)
    if role == "web":
        return check_url(f"http://127.0.0.1:{settings.web_port}/live", timeout)
    if role in ("bridge", "worker"):
        return check_role(settings, role, timeout)
    return check_url(url or f"http://127.0.0.1:{settings.web_port}/health", timeout)


def check_url(url: str, timeout: float) -> Verdict:
    """Healthy when the URL answers 2xx; the reason names what the JSON body says is wrong."""
    parts = urlsplit(url)
    shown = _without_credentials(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return Verdict(False, f"{shown}: not an http(s) URL")
    connection_type = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    connection = connection_type(parts.hostname, parts.port, timeout=timeout)
    try:
        connection.request("GET", (parts.path or "/") + (f"?{parts.query}" if parts.query else ""),
                           headers={"Accept": "application/json"})
        response = connection.getresponse()
        status, body = response.status, response.read(MAX_BODY_BYTES)
    except (OSError, http.client.HTTPException) as exc:
        return Verdict(False, f"{shown}: no answer ({type(exc).__name__}: {sanitize_error_message(exc)})")
    finally:
        connection.close()
    summary = describe_body(body)
    detail = f" ({summary})" if summary else ""
    return Verdict(200 <= status < 300, f"{shown}: HTTP {status}{detail}")


def describe_body(body: bytes) -> str:
    """``status``, then every check that is not healthy, from a /health-shaped JSON body."""
    try:
        data: Any = json.loads(body)
    except ValueError:
        return ""
    if not isinstance(data, dict):
        return ""
    parts = [f"status {data['status']}"] if isinstance(data.get("status"), str) else []
    checks = data.get("checks")
    for name, result in (checks.items() if isinstance(checks, dict) else []):
        if isinstance(result, dict) and result.get("status") not in (None, "healthy"):
            message = f": {result['message']}" if result.get("message") else ""
            parts.append(f"{name} {result['status']}{message}")
    return "; ".join(parts)


def check_role(settings: Settings, role: str, timeout: float) -> Verdict:
    keys = Keys(settings.key_prefix)
    client = connect_redis(settings, probe_role(timeout))
    try:
        if role == "bridge":
            return _bridge_verdict(client, keys)
        return _worker_verdict(Presence(client, keys, ttl_s=settings.worker_ttl_s), socket.gethostname())
    except redis.RedisError as exc:
        return Verdict(False, f"redis unreachable ({type(exc).__name__}: {sanitize_error_message(exc)})")
    finally:
        client.close()


def _bridge_verdict(client: redis.Redis, keys: Keys) -> Verdict:
    state = read_bridge_state(client, keys)
    if state is None:
        return Verdict(False, "no bridge has reported recently")
    if not state.connected:
        return Verdict(False, f"bridge {state.bridge_id} is not connected to the MQTT broker")
    subscribed = "subscribed" if state.subscribed else "not yet subscribed"
    return Verdict(True, f"bridge {state.bridge_id} connected to the MQTT broker, {subscribed}")


def _worker_verdict(presence: Presence, host: str) -> Verdict:
    mine = [worker for worker in presence.workers() if worker.host == host]
    if not mine:
        return Verdict(False, f"no worker on {host} has sent a heartbeat in the last {presence.ttl_s:g} s")
    agents = sorted({agent for worker in mine for agent in worker.agents})
    return Verdict(True, f"{len(mine)} worker(s) on {host} alive, serving {', '.join(agents) or 'no agents'}")


def role_of(cmdline: Sequence[str]) -> str | None:
    """The agent2389 subcommand in a command line (``up`` counts as web: it serves the web app)."""
    subcommand = _subcommand(cmdline)
    if subcommand == "up":
        return "web"
    return subcommand if subcommand in ROLES else None


def port_of(cmdline: Sequence[str], default: int) -> int:
    for index, arg in enumerate(cmdline):
        value = arg.removeprefix("--port=") if arg.startswith("--port=") else None
        if arg == "--port" and index + 1 < len(cmdline):
            value = cmdline[index + 1]
        if value is not None and value.isdigit():
            return int(value)
    return default


def _subcommand(cmdline: Sequence[str]) -> str | None:
    starts = [i for i, arg in enumerate(cmdline) if Path(arg).name == "agent2389" or arg == "agent2389.ops.cli"]
    if not starts:
        return None
    rest = list(cmdline[starts[0] + 1:])
    while rest:
        arg = rest.pop(0)
        if arg == "--config":
            rest = rest[1:]  # the global option's value is not the subcommand
        elif not arg.startswith("-"):
            return arg
    return None


def _process_one_cmdline() -> list[str]:
    try:
        raw = Path("/proc/1/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode("utf-8", "replace") for part in raw.split(b"\0") if part]


def _without_credentials(url: str) -> str:
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    return parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()


COMMANDS = [
    Command("health", "exit 0 when healthy, 1 otherwise, with a one-line reason (for health checks)",
            add_arguments, "agent2389.ops.probe:run_health"),
]
