"""The ``gatekeeper`` strategy: an HTTP service decides (PROTOCOL.md §9).

5xx answers and connection errors are retried ``retry_attempts`` times, 100 ms x 2^n apart; a
time-out, a 4xx or an answer that is not the agreed JSON is a routing failure (the workflow completes).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import httpx2

from agent2389.config.agent import RoutingGatekeeper
from agent2389.logs import log_fields
from workers.routing.decision import Decision, RoutingError, Situation, describe_candidate

log = logging.getLogger("agent2389.workers.routing")
BACKOFF_S = 0.1


class Gatekeeper:
    name = "gatekeeper"

    def __init__(self, settings: RoutingGatekeeper) -> None:
        self._settings = settings
        self._client = httpx2.Client(timeout=settings.timeout_ms / 1000, follow_redirects=False)

    def decide(self, situation: Situation) -> Decision:
        return parse_answer(self._post(request_body(situation)))

    def close(self) -> None:
        self._client.close()

    def _post(self, body: dict[str, Any]) -> Any:
        attempts = self._settings.retry_attempts + 1
        for attempt in range(attempts):
            retry_left = attempt + 1 < attempts
            try:
                response = self._client.post(self._settings.url, json=body)
            except httpx2.TimeoutException:
                raise RoutingError(f"the gatekeeper did not answer within {self._settings.timeout_ms} ms") from None
            except httpx2.TransportError as exc:
                if not retry_left:
                    raise RoutingError(f"the gatekeeper could not be reached ({type(exc).__name__})") from None
            else:
                if response.status_code < 500 or not retry_left:
                    return _json_of(response)
            log.info("gatekeeper unavailable; trying again", extra=log_fields(attempt=attempt + 1))
            time.sleep(BACKOFF_S * 2**attempt)
        raise AssertionError("unreachable: the last attempt returns or raises")


def request_body(situation: Situation) -> dict[str, Any]:
    envelope = situation.envelope
    return {"task_id": envelope.task_id, "conversation_id": envelope.conversation_id,
            "original_query": situation.original_query,
            "workflow_history": [step.model_dump(mode="json") for step in situation.steps_completed],
            "current_output": situation.output,
            "available_agents": [describe_candidate(c) for c in situation.candidates],
            "iteration_count": situation.iteration_count}


def parse_answer(answer: Any) -> Decision:
    """``{"workflow_complete": bool, "next_agent"?, "next_instruction"?, "reasoning"?}``, or RoutingError."""
    if not isinstance(answer, dict) or not isinstance(answer.get("workflow_complete"), bool):
        raise RoutingError("the gatekeeper's answer has no workflow_complete true or false")
    reasoning = answer.get("reasoning")
    reason = reasoning if isinstance(reasoning, str) and reasoning else "the gatekeeper decided"
    if answer["workflow_complete"]:
        return Decision.finish(reason)
    next_agent, instruction = answer.get("next_agent"), answer.get("next_instruction")
    if not isinstance(next_agent, str) or not next_agent:
        raise RoutingError("the gatekeeper's answer forwards without a next_agent")
    if instruction is not None and not isinstance(instruction, str):
        raise RoutingError("the gatekeeper's next_instruction is not a string")
    return Decision(complete=False, reason=reason, next_agent=next_agent, instruction=instruction)


def _json_of(response: httpx2.Response) -> Any:
    if response.status_code >= 400:
        raise RoutingError(f"the gatekeeper refused with HTTP {response.status_code}")
    try:
        return response.json()
    except ValueError:
        raise RoutingError("the gatekeeper's answer is not JSON") from None
