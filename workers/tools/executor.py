"""Every tool call an LLM asks for goes through here: allow-list, schema, timeout, retries, stats.

Nothing the LLM sends can crash a worker: an unknown tool or bad parameters never reach a tool process,
and every failure becomes an error result the LLM reads (``ToolOutcome.is_error``). Only the task's
budget, enforced by the caller, turns failures into a failed task.
"""

from __future__ import annotations

import contextvars
import json
import logging
import random
import re
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from agent2389.config.agent import AgentConfig, ToolSpec
from agent2389.protocol.errors import ToolExecutionError, ToolTimeoutError
from agent2389.protocol.sanitize import environment_secrets, sanitize_error_message
from agent2389.state.stats import StatsRecorder
from workers.tools.base import ToolDescription
from workers.tools.mcp.toolset import McpToolset, mcp_entries
from workers.tools.pool import ToolPool
from workers.tools.process import Reply

if TYPE_CHECKING:
    from workers.progress import TaskProgress
    from workers.tools.mcp.catalog import OfferedTool

log = logging.getLogger("agent2389.tools")
TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
MAX_RESULT_CHARS = 100_000
BACKOFF_BASE_S = 0.2
BACKOFF_MAX_S = 5.0


@dataclass(frozen=True)
class ToolCall:
    name: str
    parameters: Any


@dataclass(frozen=True)
class ToolOutcome:
    """What the LLM is told about one call."""

    content: str
    is_error: bool


class ToolExecutor:
    """The tools of one agent. ``start`` once (it initializes them), then ``run`` from any thread."""

    def __init__(self, agent: AgentConfig, stats: StatsRecorder | None = None, pool: ToolPool | None = None) -> None:
        self._agent_id = agent.id
        self._entries: dict[str, ToolSpec] = dict(agent.tools)
        # Tools in tool processes; MCP entries stand for a server's tools, offered under their own names.
        self._specs = {name: spec for name, spec in agent.tools.items() if name not in mcp_entries(agent.tools)}
        self._stats = stats
        self._pool = pool or ToolPool(self._specs, secret_env=secret_env_names(agent))
        self._mcp = McpToolset(agent.tools, environment_secrets(secret_env_names(agent)))
        self._descriptions: list[ToolDescription] = []
        self._validators: dict[str, Draft202012Validator] = {}
        self._started = False
        self._starting = threading.Lock()

    @property
    def descriptions(self) -> list[ToolDescription]:
        return [*self._descriptions, *self._mcp.descriptions()]

    def start(self) -> None:
        """Initialize every tool; ToolExecutionError says which one cannot be used, and why."""
        with self._starting:
            if not self._started and self._entries:
                try:
                    self._start()
                    self._mcp.start()
                    clash = sorted(set(self._specs) & set(self._mcp.catalog()))
                    if clash:
                        raise ToolExecutionError(f"tool name {clash[0]!r} is also the name of an MCP server's tool")
                except BaseException:
                    self._pool.stop_idle()
                    self._mcp.close()
                    raise
                self._started = True

    def _start(self) -> None:
        for name in self._entries:
            if not TOOL_NAME.match(name):
                raise ToolExecutionError(f"tool name {name!r} must be 1-64 letters, digits, '_' or '-'")
        described = self._pool.start() if self._specs else {}
        descriptions, validators = [], {}
        for name in self._specs:
            entry = described.get(name) or {}
            schema = entry.get("parameters")
            try:
                if not isinstance(schema, dict) or schema.get("type") != "object":
                    raise SchemaError("it must be a JSON Schema with \"type\": \"object\"")
                Draft202012Validator.check_schema(schema)
            except SchemaError as exc:
                raise ToolExecutionError(f"tool {name!r} describes invalid parameters: {exc.message}") from None
            descriptions.append(ToolDescription(name=name, description=str(entry.get("description") or name),
                                                parameters=schema))
            validators[name] = Draft202012Validator(schema)
        self._descriptions, self._validators = descriptions, validators

    def run_all(self, calls: Sequence[ToolCall], task_id: str | None = None,
                progress: TaskProgress | None = None) -> list[ToolOutcome]:
        """Outcomes in the order of ``calls``; calls asked for in one turn run at the same time."""
        if len(calls) <= 1:
            return [self.run(call, task_id, progress) for call in calls]
        # Each call runs in a copy of this thread's context, so its log lines keep the task's span.
        contexts = [contextvars.copy_context() for _ in calls]
        with ThreadPoolExecutor(max_workers=len(calls), thread_name_prefix="tool-call") as executor:
            futures = [executor.submit(ctx.run, self.run, call, task_id, progress)
                       for ctx, call in zip(contexts, calls, strict=True)]
            return [future.result() for future in futures]

    def run(self, call: ToolCall, task_id: str | None = None, progress: TaskProgress | None = None) -> ToolOutcome:
        """Run one call (``task_id`` puts it on the task's timeline, ``progress`` tells it as progress events);
        never raises for the call's own failures."""
        self.start()
        # Looked up once: an MCP server may change its tool list while this call runs.
        mcp_tool = self._mcp.catalog().get(call.name)
        names = {"mcp_server": mcp_tool.entry, "mcp_tool": mcp_tool.mcp_name} if mcp_tool is not None else {}
        started = time.monotonic()
        if progress is not None:
            progress.tool_call(call.name, call.parameters, **names)
        outcome = self._run(call, task_id, mcp_tool)
        if progress is not None:
            if outcome.is_error:
                progress.tool_error(call.name, time.monotonic() - started, outcome.content, **names)
            else:
                progress.tool_complete(call.name, time.monotonic() - started, outcome.content, **names)
        return outcome

    def _run(self, call: ToolCall, task_id: str | None, mcp_tool: OfferedTool | None) -> ToolOutcome:
        rejection = self._rejection(call, mcp_tool)
        if rejection is not None:
            log.info("tool call refused: %s", rejection)
            return ToolOutcome(rejection, is_error=True)
        spec = self._mcp.spec(mcp_tool) if mcp_tool is not None else self._specs[call.name]
        attempts = spec.retries + 1
        for attempt in range(attempts):
            reply = self._attempt(call, spec, task_id, mcp_tool)
            if reply.ok:
                return ToolOutcome(_as_text(reply.result), is_error=False)
            if not reply.retryable or attempt == attempts - 1:
                break
            time.sleep(backoff_s(attempt))
        tries = f" after {attempts} attempts" if reply.retryable and attempts > 1 else ""
        return ToolOutcome(f"tool {call.name!r} failed{tries}: {reply.error}", is_error=True)

    def close(self) -> None:
        self._pool.close()
        self._mcp.close()

    def _rejection(self, call: ToolCall, mcp_tool: OfferedTool | None) -> str | None:
        if mcp_tool is not None:
            validator = mcp_tool.validator
        elif call.name in self._specs:
            validator = self._validators[call.name]
        else:
            allowed = ", ".join(sorted([*self._specs, *self._mcp.catalog()])) or "none"
            return f"unknown tool {call.name!r}: this agent's tools are {allowed}"
        if not isinstance(call.parameters, dict):
            return f"tool {call.name!r} takes a JSON object of parameters"
        errors = sorted(validator.iter_errors(call.parameters), key=lambda e: list(e.path))
        if errors:
            where = "/".join(str(part) for part in errors[0].path) or "parameters"
            return f"invalid parameters for tool {call.name!r}: {where}: {errors[0].message}"[:1000]
        return None

    def _attempt(self, call: ToolCall, spec: ToolSpec, task_id: str | None, mcp_tool: OfferedTool | None) -> Reply:
        started = time.monotonic()
        outcome = "failed"
        try:
            if mcp_tool is not None:
                reply = self._mcp.call(mcp_tool, call.parameters, spec.timeout_s)
            else:
                reply = self._pool.call(call.name, call.parameters, spec.timeout_s)
            outcome = "ok" if reply.ok else "failed"
        except ToolTimeoutError as exc:
            outcome = "timeout"
            reply = Reply(ok=False, error=str(exc))
        except ToolExecutionError as exc:
            reply = Reply(ok=False, error=str(exc), retryable=exc.retryable)
        except OSError as exc:  # e.g. no file descriptors left to start a tool process
            reply = Reply(ok=False, error=f"could not start a tool process ({type(exc).__name__})", retryable=True)
        duration = time.monotonic() - started
        log.info("tool %s %s in %.3f s", call.name, outcome, duration)
        if self._stats is not None:
            error = None if reply.ok else sanitize_error_message(reply.error)
            self._stats.tool_call(self._agent_id, call.name, duration, outcome, task_id=task_id, error=error)
        return reply


def secret_env_names(agent: AgentConfig) -> list[str]:
    """Variables whose values tool processes scrub from error messages: the agent's, and any ``*_env`` in a
    tool's config (``api_key_env = "BRAVE_SEARCH_API_KEY"``)."""
    return agent.referenced_env_vars()


def backoff_s(attempt: int) -> float:
    """Exponential, capped, with full jitter so that retries of many tasks do not arrive together."""
    return random.uniform(0, min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2**attempt)) + BACKOFF_BASE_S / 2


def _as_text(result: Any) -> str:
    text = result if isinstance(result, str) else json.dumps(result, default=str, ensure_ascii=False)
    if len(text) > MAX_RESULT_CHARS:
        return text[:MAX_RESULT_CHARS] + f"\n[truncated: the result had {len(text)} characters]"
    return text

