"""The ``echo`` provider: a deterministic answer from instruction and input, with no network.

For demos, tests and benchmarks; ``[llm] delay_s`` makes it behave like a slow model.
"""

from __future__ import annotations

import json
import time

from agent2389.config.agent import AgentConfig
from workers.llm.base import TaskRequest


def echo_text(request: TaskRequest) -> str:
    body = request.input if isinstance(request.input, str) else json.dumps(request.input, sort_keys=True)
    return f"{request.instruction}: {body}" if request.instruction else body


class EchoRunner:
    def __init__(self, agent: AgentConfig) -> None:
        self._delay_s = agent.llm.delay_s

    def verify(self) -> None:
        return None

    def run(self, request: TaskRequest) -> str:
        if self._delay_s:
            time.sleep(self._delay_s)
        return echo_text(request)

    def close(self) -> None:
        return None
