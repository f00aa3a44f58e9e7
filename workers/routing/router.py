"""The routing step of a v2 workflow (PROTOCOL.md §9): after this agent's output, complete or forward.

Whatever happens here, the work done is never thrown away: the cap, a choice that is not routable or
not allowed, and any routing failure complete the workflow with the output and the reason as the
trace's last entry. Every decision is counted and timed per agent, strategy and outcome, and joins the
task's timeline (``routed`` per hop, ``workflow_complete`` at the end).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, replace

import redis

from agent2389.config.agent import AgentConfig
from agent2389.logs import log_fields
from agent2389.protocol.envelope import TaskEnvelope
from agent2389.protocol.sanitize import sanitize_error_message
from agent2389.protocol.topics import AGENT_ID_PATTERN, conversation_topic
from agent2389.state.stats import StatsRecorder
from workers.llm.base import Runner, TaskRequest
from workers.progress import NO_PROGRESS, TaskProgress
from workers.routing.decision import (
    Candidate,
    Decision,
    Directory,
    RoutingError,
    Situation,
    Strategy,
    short_reason,
)
from workers.routing.echo import EchoRouting
from workers.routing.gatekeeper import Gatekeeper
from workers.routing.llm import LlmRouting, LoopRunner
from workers.routing.tools import handoff_tool, parse_handoff
from workers.routing.workflow import completion, forward, original_query

log = logging.getLogger("agent2389.workers.routing")
# Outcomes, the label values of agent2389_routing_decisions_total.
FORWARDED, COMPLETED, CAPPED, UNROUTABLE, NOT_ALLOWED, FAILED = (
    "forwarded", "completed", "capped", "unroutable", "not_allowed", "failed")
NO_HANDOFF = "the agent answered without handing off"


@dataclass(frozen=True)
class Routed:
    """Where the agent's one message goes, and what it says."""

    topic: str
    payload: str


def applies(agent: AgentConfig, envelope: TaskEnvelope) -> bool:
    """Routing is for a v2 envelope without ``next`` sent to an agent with ``[routing]``; the rest is §5."""
    return agent.routing is not None and envelope.is_v2 and envelope.next is None


class Router:
    def __init__(self, directory: Directory, stats: StatsRecorder) -> None:
        self._directory = directory
        self._stats = stats
        self._strategies: dict[str, Strategy] = {}

    def work(self, agent: AgentConfig, envelope: TaskEnvelope, runner: Runner, request: TaskRequest) -> Routed:
        """Step 8 for a delivery that routes, then the decision. Only a failure of step 8 raises."""
        assert agent.routing is not None
        if agent.routing.strategy != "agent" or agent.llm.provider == "echo" or not isinstance(runner, LoopRunner):
            return self.route(agent, envelope, runner.run(request), runner, progress=request.progress)
        candidates = self._handoff_candidates(agent, envelope)
        if not candidates:
            return self.route(agent, envelope, runner.run(request), runner, progress=request.progress)
        result = runner.run_until(request, [handoff_tool(candidates)])
        if isinstance(result, str):
            return self.route(agent, envelope, result, runner, Decision.finish(NO_HANDOFF), request.progress)
        parameters = getattr(result, "parameters", None)
        handed = parameters.get("input") if isinstance(parameters, dict) else None
        # The loop does not check a terminal call against its schema: whatever the input, it travels as text.
        output = handed if isinstance(handed, str) else "" if handed is None else json.dumps(handed)
        try:
            decision = replace(parse_handoff(parameters), input=output)
        except RoutingError as exc:
            return self._failed(agent, envelope, output, str(exc), time.perf_counter())
        return self.route(agent, envelope, output, runner, decision, request.progress)

    def route(self, agent: AgentConfig, envelope: TaskEnvelope, output: str, runner: Runner | None = None,
              handoff: Decision | None = None, progress: TaskProgress = NO_PROGRESS) -> Routed:
        """Decide for one delivery; ``handoff`` is what the agent's own loop decided (strategy ``agent``);
        a forward is told on ``progress`` as a ``Routed`` event (PROTOCOL.md §10)."""
        assert agent.routing is not None
        started = time.perf_counter()
        context = envelope.workflow_context()
        iteration = context.iteration_count if context else 0
        if iteration >= agent.routing.max_iterations:
            reason = f"the workflow reached this agent's max_iterations ({agent.routing.max_iterations})"
            return self._complete(agent, envelope, output, reason, CAPPED, started)
        try:
            routable = [c for c in self._directory.routable() if c.agent_id != agent.id]
            candidates = [c for c in routable if agent.routing.allow is None or c.agent_id in agent.routing.allow]
            situation = Situation(agent, envelope, original_query(envelope), iteration,
                                  list(context.steps_completed) if context else [], output, candidates)
            decision = handoff or self._strategy(agent, runner).decide(situation)
        except RoutingError as exc:
            return self._failed(agent, envelope, output, str(exc), started)
        except redis.RedisError as exc:
            return self._failed(agent, envelope, output, f"the agent registry could not be read "
                                f"({type(exc).__name__})", started)
        except Exception:
            log.exception("routing failed unexpectedly")
            return self._failed(agent, envelope, output, "an unexpected error", started)
        reason = short_reason(decision.reason)
        if decision.complete:
            return self._complete(agent, envelope, output, reason, COMPLETED, started)
        chosen = decision.next_agent or ""
        if agent.routing.allow is not None and chosen not in agent.routing.allow:
            return self._complete(agent, envelope, output, f"chose {short_reason(chosen)!r}, which this agent may not "
                                  f"route to ({reason})", NOT_ALLOWED, started)
        if not AGENT_ID_PATTERN.fullmatch(chosen) or chosen not in {c.agent_id for c in routable}:
            return self._complete(agent, envelope, output, f"chose {short_reason(chosen)!r}, which is not routable "
                                  f"({reason})", UNROUTABLE, started)
        work = output if decision.input is None else decision.input
        wire = forward(envelope, agent.id, chosen, decision.instruction, work, reason)
        payload, limit = json.dumps(wire), agent.agent.max_message_bytes
        if len(payload) > limit:
            # The next agent would drop it unanswered (PROTOCOL.md §5 step 3).
            return self._failed(agent, envelope, output, f"the forward to {chosen} would be {len(payload)} bytes; "
                                f"the limit is {limit}", started)
        duration_s = self._record(agent, envelope, FORWARDED, started)
        step, decision_ms = wire["context"]["iteration_count"], round(duration_s * 1000, 3)
        self._stats.task_event(envelope.task_id, agent.id, "routed", to_agent=chosen, reason=reason,
                               strategy=agent.routing.strategy, decision_ms=decision_ms, step=step)
        progress.routed(chosen, reason, step, strategy=agent.routing.strategy, decision_ms=decision_ms)
        return Routed(wire["topic"], payload)

    def close(self) -> None:
        for strategy in self._strategies.values():
            close = getattr(strategy, "close", None)
            if close is not None:
                close()

    def _handoff_candidates(self, agent: AgentConfig, envelope: TaskEnvelope) -> list[Candidate]:
        """Whom the ``handoff`` tool may name; none (no handoff offered) at the cap or without a registry."""
        assert agent.routing is not None
        context = envelope.workflow_context()
        if context is not None and context.iteration_count >= agent.routing.max_iterations:
            return []
        try:
            routable = self._directory.routable()
        except redis.RedisError:
            return []
        allow = agent.routing.allow
        return [c for c in routable if c.agent_id != agent.id and (allow is None or c.agent_id in allow)]

    def _strategy(self, agent: AgentConfig, runner: Runner | None) -> Strategy:
        assert agent.routing is not None
        name = agent.routing.strategy
        if name == "gatekeeper":
            # One HTTP client per agent for the worker's life: connections are reused across tasks.
            strategy = self._strategies.get(agent.id)
            if strategy is None:
                assert agent.routing.gatekeeper is not None
                strategy = self._strategies[agent.id] = Gatekeeper(agent.routing.gatekeeper)
            return strategy
        if agent.llm.provider == "echo":
            return EchoRouting(name)
        if name == "agent":
            return _NoHandoff()
        if not isinstance(runner, LoopRunner):
            raise RoutingError("this agent's provider cannot make a routing call")
        return LlmRouting(runner, agent.routing.llm.model if agent.routing.llm else None)

    def _failed(self, agent: AgentConfig, envelope: TaskEnvelope, output: str, why: str, started: float) -> Routed:
        reason = f"routing failed: {sanitize_error_message(why)}"
        log.warning("routing failed; the workflow completes with this agent's output",
                    extra=log_fields(reason=reason))
        return self._complete(agent, envelope, output, reason, FAILED, started)

    def _complete(self, agent: AgentConfig, envelope: TaskEnvelope, output: str, reason: str, outcome: str,
                  started: float) -> Routed:
        answer = completion(envelope, agent.id, output, reason)
        payload = json.dumps(answer)
        self._record(agent, envelope, outcome, started)
        self._stats.task_event(envelope.task_id, agent.id, "workflow_complete", reason=reason, outcome=outcome,
                               steps=answer["routing_trace"][-1]["step_number"], response_bytes=len(output.encode()))
        return Routed(conversation_topic(envelope.conversation_id, agent.id), payload)

    def _record(self, agent: AgentConfig, envelope: TaskEnvelope, outcome: str, started: float) -> float:
        assert agent.routing is not None
        duration_s = time.perf_counter() - started
        self._stats.routing_decision(agent.id, agent.routing.strategy, outcome, duration_s)
        log.info("routing decision", extra=log_fields(outcome=outcome, strategy=agent.routing.strategy,
                                                         decision_ms=round(duration_s * 1000, 3)))
        return duration_s



class _NoHandoff:
    """Strategy ``agent``: the decision is made in the agent's own loop; no handoff there means complete."""

    name = "agent"

    def decide(self, situation: Situation) -> Decision:
        return Decision.finish(NO_HANDOFF)
