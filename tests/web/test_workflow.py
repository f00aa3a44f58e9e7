"""A v2 workflow's timeline read back as hops between agents, in order (web/workflow.py, /api/tasks/<id>)."""

from __future__ import annotations

import itertools
from typing import Any

from flask.testing import FlaskClient

from tests.web.conftest import System
from tests.web.workflows import Hop, three_hop_workflow, visit
from web.workflow import workflow


def test_a_workflow_shows_every_hop_in_order_with_reason_strategy_and_durations(client: FlaskClient,
                                                                                  system: System) -> None:
    three_hop_workflow(system, "wf-1")
    flow = client.get("/api/tasks/wf-1").get_json()["workflow"]
    assert flow["state"] == "completed" and flow["entry_agent"] == "researcher"
    assert flow["path"] == ["researcher", "writer", "reviewer", "writer"] and flow["steps"] == 3
    hops = [(h["step"], h["from_agent"], h["to_agent"], h["strategy"], h["reason"], h["duration_ms"])
            for h in flow["hops"]]
    assert hops == [(1, "researcher", "writer", "llm", "sources found; draft it", 200.0),
                    (2, "writer", "reviewer", "agent", "draft ready for review", 300.0),
                    (3, "reviewer", "writer", "llm", "fix the intro", 100.0)]
    assert [h["decision_ms"] for h in flow["hops"]] == [1.5, 1.5, 1.5]
    assert (flow["completed_by"], flow["complete_reason"], flow["response_bytes"]) == ("writer", "the draft is final",
                                                                                      1234)
    assert flow["duration_ms"] is not None and flow["duration_ms"] > 0


def test_an_agent_visited_twice_has_a_visit_each_time(client: FlaskClient, system: System) -> None:
    three_hop_workflow(system, "wf-twice")
    visits = client.get("/api/tasks/wf-twice").get_json()["workflow"]["visits"]
    assert [(v["agent"], v["state"], v["duration_ms"], v["attempts"], v["llm_calls"]) for v in visits] == [
        ("researcher", "completed", 200.0, 1, 1), ("writer", "completed", 300.0, 1, 1),
        ("reviewer", "completed", 100.0, 1, 1), ("writer", "completed", 250.0, 1, 1)]


def test_a_workflow_in_progress_is_running_and_a_failed_visit_fails_it(client: FlaskClient, system: System) -> None:
    visit(system, "wf-run", "researcher", 0.1, 0, Hop("writer", "draft it"))
    system.stats.task_event("wf-run", "writer", "queued", conversation_id="conv-wf")
    assert client.get("/api/tasks/wf-run").get_json()["workflow"]["state"] == "running"
    visit(system, "wf-fail", "researcher", 0.1, 0, Hop("writer", "draft it"))
    visit(system, "wf-fail", "writer", 0.1, 1, error_code="llm_error")
    flow = client.get("/api/tasks/wf-fail").get_json()["workflow"]
    assert flow["state"] == "failed" and flow["visits"][-1]["error_code"] == "llm_error"


def test_a_hop_through_an_agent_that_records_nothing_here_is_shown_as_such(client: FlaskClient,
                                                                           system: System) -> None:
    visit(system, "wf-foreign", "researcher", 0.1, 0, Hop("foreign-critic", "needs a critic"))
    flow = client.get("/api/tasks/wf-foreign").get_json()["workflow"]
    assert flow["state"] == "forwarded" and flow["hops"][0]["to_visit"] is None
    visit(system, "wf-foreign", "writer", 0.1, 2, complete="done", response_bytes=10)
    flow = client.get("/api/tasks/wf-foreign").get_json()["workflow"]
    assert [(h["from_agent"], h["to_agent"], h["recorded"]) for h in flow["hops"]] == [
        ("researcher", "foreign-critic", True), ("foreign-critic", "writer", False)]
    assert flow["path"] == ["researcher", "foreign-critic", "writer"] and flow["steps"] == 1
    assert flow["state"] == "completed"


def test_a_task_that_was_never_routed_has_no_workflow(client: FlaskClient, system: System) -> None:
    system.task("echo", "plain", 0.1)
    body = client.get("/api/tasks/plain").get_json()
    assert body["workflow"] is None and body["workflow_hops"] == 0


def test_the_recent_tasks_list_counts_a_workflows_hops(client: FlaskClient, system: System) -> None:
    three_hop_workflow(system, "wf-listed")
    [task] = client.get("/api/tasks").get_json()["tasks"]
    assert task["task_id"] == "wf-listed" and task["workflow_hops"] == 3 and task["agent"] == "writer"


def events_of_a_revisit(skew_s: float) -> list[dict[str, Any]]:
    """a → b → a, where the bridge stamped a's second arrival ``skew_s`` before a's first finish was stamped."""
    clock = itertools.count(100.0, 0.01)
    at = [next(clock) for _ in range(12)]
    return [
        {"event": "queued", "agent": "a", "at": at[0]},
        {"event": "started", "agent": "a", "at": at[1]},
        {"event": "routed", "agent": "a", "at": at[2], "to_agent": "b", "step": 1, "reason": "r1"},
        {"event": "completed", "agent": "a", "at": at[3], "duration_ms": 30.0},
        {"event": "queued", "agent": "b", "at": at[4]},
        {"event": "started", "agent": "b", "at": at[5]},
        {"event": "routed", "agent": "b", "at": at[6], "to_agent": "a", "step": 2, "reason": "r2"},
        {"event": "completed", "agent": "b", "at": at[8] + skew_s, "duration_ms": 20.0},
        {"event": "queued", "agent": "a", "at": at[7]},
        {"event": "started", "agent": "a", "at": at[9]},
        {"event": "workflow_complete", "agent": "a", "at": at[10], "reason": "done", "steps": 2,
         "response_bytes": 5},
        {"event": "completed", "agent": "a", "at": at[11], "duration_ms": 10.0},
    ]


def test_events_stamped_out_of_order_across_processes_still_land_in_their_visit() -> None:
    for skew in (0.0, 0.05):
        flow = workflow(events_of_a_revisit(skew))
        assert flow is not None
        assert [(v["agent"], v["duration_ms"]) for v in flow["visits"]] == [("a", 30.0), ("b", 20.0), ("a", 10.0)]
        assert [(h["from_agent"], h["to_agent"], h["to_visit"]) for h in flow["hops"]] == [("a", "b", 1),
                                                                                            ("b", "a", 2)]


def test_a_visit_whose_arrival_was_stamped_before_its_senders_still_comes_after_it() -> None:
    events = [
        {"event": "queued", "agent": "b", "at": 1.0},
        {"event": "queued", "agent": "a", "at": 1.1},
        {"event": "started", "agent": "a", "at": 1.2},
        {"event": "routed", "agent": "a", "at": 1.3, "to_agent": "b", "step": 1, "reason": "r"},
        {"event": "completed", "agent": "a", "at": 1.4, "duration_ms": 5.0},
        {"event": "started", "agent": "b", "at": 1.5},
        {"event": "workflow_complete", "agent": "b", "at": 1.6, "reason": "done", "steps": 2, "response_bytes": 3},
        {"event": "completed", "agent": "b", "at": 1.7, "duration_ms": 4.0},
    ]
    flow = workflow(events)
    assert flow is not None and flow["path"] == ["a", "b"] and flow["entry_agent"] == "a"
    assert [v["agent"] for v in flow["visits"]] == ["a", "b"]
    assert [(h["from_agent"], h["to_agent"], h["recorded"]) for h in flow["hops"]] == [("a", "b", True)]
