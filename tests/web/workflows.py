"""v2 workflows recorded into the real Redis the way bridge, workers and the routing helper record them."""

from __future__ import annotations

from dataclasses import dataclass

from tests.web.conftest import System


@dataclass(frozen=True)
class Hop:
    to_agent: str
    reason: str
    strategy: str = "llm"
    decision_ms: float = 1.5


def visit(system: System, task_id: str, agent: str, seconds: float, step: int, hop: Hop | None = None,
          complete: str | None = None, response_bytes: int = 0, conversation: str = "conv-wf",
          error_code: str | None = None) -> None:
    """One agent's visit of a workflow: queued by the bridge, run by a worker, then routed on or completed."""
    system.stats.task_received(agent)
    system.stats.task_event(task_id, agent, "queued", conversation_id=conversation)
    system.stats.task_started(agent, task_id, conversation, 1)
    system.stats.llm_call(agent, "echo", seconds / 2, 10, 5, True, task_id=task_id)
    if hop is not None:
        system.stats.task_event(task_id, agent, "routed", to_agent=hop.to_agent, reason=hop.reason,
                                strategy=hop.strategy, decision_ms=hop.decision_ms, step=step + 1)
    if complete is not None:
        system.stats.task_event(task_id, agent, "workflow_complete", reason=complete, steps=step,
                                response_bytes=response_bytes)
    system.stats.task_finished(agent, task_id, seconds, error_code)


def three_hop_workflow(system: System, task_id: str) -> None:
    """researcher → writer → reviewer → writer, where the writer completes with a 1234-byte answer."""
    visit(system, task_id, "researcher", 0.2, 0, Hop("writer", "sources found; draft it"))
    visit(system, task_id, "writer", 0.3, 1, Hop("reviewer", "draft ready for review", strategy="agent"))
    visit(system, task_id, "reviewer", 0.1, 2, Hop("writer", "fix the intro"))
    visit(system, task_id, "writer", 0.25, 3, complete="the draft is final", response_bytes=1234)
