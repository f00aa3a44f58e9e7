"""The tool process: a fresh interpreter that initializes an agent's tools once, then runs calls one at a time.

Started by :mod:`workers.tools.process` as ``python -m workers.tools.host``. It speaks JSON lines: the
first line in is the setup (tools and their config), the first line out says whether every tool
initialized; then one request line in, one reply line out, until stdin closes. The worker kills the
process when a call runs past its timeout, so nothing here needs to be interruptible.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
from collections.abc import Mapping
from typing import Any, BinaryIO

from agent2389.config.settings import Settings
from agent2389.logs import setup_logging
from agent2389.protocol.errors import Agent2389Error, RetryableToolError
from agent2389.protocol.sanitize import environment_secrets, sanitize_error_message
from workers.tools.base import Tool
from workers.tools.loader import load_tool

log = logging.getLogger("agent2389.tools.host")
MAX_ERROR_CHARS = 1000
PARENT_CHECK_INTERVAL_S = 0.5


def main() -> None:
    channel = _claim_stdout()
    # The worker that starts this process read the same environment, so its settings were checked there.
    settings = Settings.from_env(None)
    setup_logging(settings.log_level, settings.log_format)
    setup = json.loads(sys.stdin.buffer.readline() or b"{}")
    _exit_with_parent(int(setup.get("parent_pid", os.getppid())))
    sys.path[:0] = [entry for entry in setup.get("sys_path", []) if entry not in sys.path]
    secrets = environment_secrets(setup.get("secret_env", []))
    tools, descriptions, failure = _initialize(setup.get("tools", {}), secrets)
    if failure is not None:
        _send(channel, {"ready": False, "error": failure})
        return
    _send(channel, {"ready": True, "tools": descriptions})
    try:
        for line in sys.stdin.buffer:
            request = json.loads(line)
            _send(channel, _execute(tools, request["tool"], request["parameters"], secrets))
    finally:
        _shutdown(tools)


def _claim_stdout() -> BinaryIO:
    """Keep stdout for replies only: a tool that prints must not corrupt the reply stream."""
    channel = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return channel


def _exit_with_parent(parent_pid: int) -> None:
    """A worker killed with SIGKILL cannot stop its tool processes; they notice and leave on their own."""

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(PARENT_CHECK_INTERVAL_S)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _initialize(
    specs: Mapping[str, Any], secrets: list[str]
) -> tuple[dict[str, Tool], dict[str, Any], str | None]:
    tools: dict[str, Tool] = {}
    descriptions: dict[str, Any] = {}
    for name, spec in specs.items():
        try:
            tool = load_tool(name, spec["impl"])
            tools[name] = tool
            tool.initialize(spec.get("config", {}))
            descriptions[name] = _description(tool)
        except Exception as exc:
            _shutdown(tools)
            return {}, {}, f"tool {name!r} failed to initialize: {_reason(exc, secrets)}"
    return tools, descriptions, None


def _description(tool: Tool) -> dict[str, Any]:
    described = tool.describe()
    return {"description": described.get("description", ""), "parameters": described.get("parameters")}


def _execute(tools: Mapping[str, Tool], name: str, parameters: dict[str, Any], secrets: list[str]) -> dict[str, Any]:
    tool = tools.get(name)
    if tool is None:
        return {"ok": False, "error": f"no tool named {name!r}", "retryable": False}
    try:
        result = tool.execute(parameters)
        json.dumps(result, default=str)
    except Exception as exc:
        return {"ok": False, "error": _reason(exc, secrets), "retryable": isinstance(exc, RetryableToolError)}
    return {"ok": True, "result": result}


def _reason(exc: Exception, secrets: list[str]) -> str:
    # Our own errors carry messages written for the LLM; anything else may hold paths or secrets.
    if isinstance(exc, Agent2389Error):
        text = str(exc) or type(exc).__name__
        for secret in secrets:
            text = text.replace(secret, "[redacted]")
        return text[:MAX_ERROR_CHARS]
    return f"{type(exc).__name__}: {sanitize_error_message(exc, secrets)}"


def _shutdown(tools: Mapping[str, Tool]) -> None:
    for name, tool in tools.items():
        shutdown = getattr(tool, "shutdown", None)
        if callable(shutdown):
            try:
                shutdown()
            except Exception:
                log.warning("tool %s failed to shut down", name, exc_info=True)


def _send(channel: BinaryIO, message: dict[str, Any]) -> None:
    channel.write(json.dumps(message, default=str).encode("utf-8") + b"\n")


if __name__ == "__main__":
    main()
