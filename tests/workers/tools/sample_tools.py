"""Custom tools for the tests, loaded the way operators load theirs: ``python:tests.workers.tools.sample_tools:X``."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from agent2389.config.agent import AgentConfig
from agent2389.protocol.errors import RetryableToolError, ToolExecutionError

SAMPLE = "python:tests.workers.tools.sample_tools:"
OBJECT = {"type": "object", "properties": {}, "additionalProperties": True}


def agent_with_tools(tools: dict[str, Any], **sections: Any) -> AgentConfig:
    return AgentConfig.model_validate({"agent": {"id": "tool-tester"}, "llm": {"provider": "echo"},
                                       "tools": tools, **sections})


class _Base:
    description = "a test tool"
    parameters: dict[str, Any] = OBJECT

    def describe(self) -> dict[str, Any]:
        return {"name": type(self).__name__, "description": self.description, "parameters": self.parameters}

    def initialize(self, config: Mapping[str, Any]) -> None:
        self.config = dict(config)

    def _count(self) -> int:
        """Attempts so far, kept in a file: retries may land in another tool process."""
        counter = Path(self.config["counter"])
        count = int(counter.read_text() or 0) + 1 if counter.exists() else 1
        counter.write_text(str(count))
        return count


class EchoTool(_Base):
    parameters = {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"],
                  "additionalProperties": False}

    def execute(self, parameters: dict[str, Any]) -> dict[str, Any]:
        return {"echo": parameters["text"], "pid": os.getpid()}


class SleepTool(_Base):
    parameters = {"type": "object", "properties": {"seconds": {"type": "number", "maximum": 30}},
                  "required": ["seconds"]}

    def execute(self, parameters: dict[str, Any]) -> str:
        time.sleep(parameters["seconds"])
        return f"slept {parameters['seconds']} s"


class SpinTool(_Base):
    """Stuck in pure Python: only killing the process stops it."""

    def execute(self, parameters: dict[str, Any]) -> str:
        while True:
            pass


class FlakyTool(_Base):
    """Fails in a retryable way ``config.failures`` times, then succeeds."""

    def execute(self, parameters: dict[str, Any]) -> str:
        attempt = self._count()
        if attempt <= int(self.config["failures"]):
            raise RetryableToolError(f"temporary failure on attempt {attempt}")
        return f"succeeded on attempt {attempt}"


class BrokenTool(_Base):
    def execute(self, parameters: dict[str, Any]) -> str:
        self._count()
        raise ToolExecutionError("permanently broken")


class CrashTool(_Base):
    def execute(self, parameters: dict[str, Any]) -> str:
        os._exit(3)


class ChattyTool(_Base):
    def execute(self, parameters: dict[str, Any]) -> str:
        print("{not a reply", flush=True)
        return "spoke after printing"


class LeakyTool(_Base):
    def execute(self, parameters: dict[str, Any]) -> str:
        raise RuntimeError(f"login failed for key {os.environ['LEAKY_TOOL_KEY']} at /srv/app/secret.cfg")


class FailingInitTool(_Base):
    def initialize(self, config: Mapping[str, Any]) -> None:
        raise ToolExecutionError("cannot reach the inventory database")

    def execute(self, parameters: dict[str, Any]) -> str:
        return "never"


class BadSchemaTool(_Base):
    parameters = {"type": "object", "properties": {"x": {"type": "no-such-type"}}}

    def execute(self, parameters: dict[str, Any]) -> str:
        return "never"


class NotATool:
    pass
