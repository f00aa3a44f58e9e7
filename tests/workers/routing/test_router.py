"""PROTOCOL.md §9's forward and complete, on the echo provider's fixed routing rule."""

from __future__ import annotations

import redis

from agent2389.protocol.envelope import TaskEnvelope
from tests.workers.routing.conftest import Bench, Listed, agent, v2_task


def context(iteration: int, *worked: str) -> dict[str, object]:
    return {"original_query": "the question", "iteration_count": iteration,
            "steps_completed": [{"agent_id": w, "action": "x", "timestamp": "2026-01-01T00:00:00Z"} for w in worked]}


def test_the_first_hop_forwards_a_v2_envelope_with_a_new_context_and_trace(bench: Bench) -> None:
    wire = v2_task()
    [(topic, sent)] = bench.run(agent(strategy="llm"), wire)
    assert topic == "/control/agents/b/input"
    assert sent["task_id"] == wire["task_id"] and sent["conversation_id"] == "c" and sent["next"] is None
    assert sent["version"] == "2.0" and sent["topic"] == topic
    assert sent["input"] == "say: hi" and sent["instruction"] == "say"
    assert sent["context"]["original_query"] == "say\n\nhi" and sent["context"]["iteration_count"] == 1
    assert [(s["agent_id"], s["action"]) for s in sent["context"]["steps_completed"]] == [("a", "say")]
    [hop] = sent["routing_trace"]
    assert (hop["from_agent"], hop["to_agent"], hop["step_number"]) == ("a", "b", 1) and hop["reason"]
    TaskEnvelope.model_validate(sent)


def test_a_later_hop_keeps_the_query_and_extends_steps_and_trace(bench: Bench) -> None:
    earlier = [{"from_agent": "x", "to_agent": "a", "reason": "r", "timestamp": "t", "step_number": 1}]
    [(topic, sent)] = bench.run(agent(strategy="agent"), v2_task(context=context(1, "b"), routing_trace=earlier))
    assert topic == "/control/agents/c/input"
    assert sent["context"]["original_query"] == "the question" and sent["context"]["iteration_count"] == 2
    assert [s["agent_id"] for s in sent["context"]["steps_completed"]] == ["b", "a"]
    assert sent["routing_trace"][0] == earlier[0] and sent["routing_trace"][1]["step_number"] == 2


def test_a_context_without_original_query_takes_it_from_this_envelope_and_forwards_it(bench: Bench) -> None:
    partial = {"iteration_count": 1, "steps_completed": [{"agent_id": "b", "action": "x", "timestamp": "t"}]}
    [(topic, sent)] = bench.run(agent(strategy="llm"), v2_task(context=partial))
    assert topic == "/control/agents/c/input"
    assert sent["context"]["original_query"] == "say\n\nhi" and sent["context"]["iteration_count"] == 2


def test_a_step_without_instruction_is_recorded_with_an_empty_action_never_null(bench: Bench) -> None:
    [(_, sent)] = bench.run(agent(strategy="llm"), v2_task(instruction=None))
    assert [(s["agent_id"], s["action"]) for s in sent["context"]["steps_completed"]] == [("a", "")]


def test_when_every_candidate_worked_the_workflow_completes_with_the_trace(bench: Bench) -> None:
    wire = v2_task(context=context(2, "b", "c"))
    [(topic, sent)] = bench.run(agent(strategy="llm"), wire)
    assert topic == "/conversations/c/a"
    assert sent["task_id"] == wire["task_id"] and sent["response"] == "say: hi"
    [last] = sent["routing_trace"]
    assert last["from_agent"] == "a" and last["to_agent"] is None and last["step_number"] == 3
    assert "every agent" in last["reason"]


def test_allow_limits_and_orders_the_candidates(bench: Bench) -> None:
    [(topic, _)] = bench.run(agent(strategy="llm", allow=["c", "b"]), v2_task())
    assert topic == "/control/agents/c/input"
    [(topic, _)] = bench.run(agent(strategy="llm", allow=["nobody"]), v2_task())
    assert topic == "/conversations/c/a"


def test_the_iteration_cap_completes_without_a_decision(bench: Bench) -> None:
    bench.directory.agents = []  # a decision would complete too, with another reason
    [(topic, sent)] = bench.run(agent(strategy="llm", max_iterations=3), v2_task(context=context(3)))
    assert topic == "/conversations/c/a" and "max_iterations (3)" in sent["routing_trace"][-1]["reason"]


def test_a_static_next_wins_over_routing(bench: Bench) -> None:
    nxt = {"topic": "/control/agents/z/input", "instruction": "then", "input": None, "next": None}
    [(topic, sent)] = bench.run(agent(strategy="llm"), v2_task(next=nxt))
    assert topic == "/control/agents/z/input" and sent["version"] == "2.0" and "routing_trace" not in sent


def test_an_agent_without_routing_answers_a_v2_envelope_as_v1(bench: Bench) -> None:
    wire = v2_task(context=context(1, "b"))
    [(topic, sent)] = bench.run(agent(), wire)
    assert (topic, sent) == ("/conversations/c/a", {"task_id": wire["task_id"], "response": "say: hi"})


def test_a_v1_envelope_to_a_routing_agent_is_answered_as_v1(bench: Bench) -> None:
    wire = v2_task()
    del wire["version"]
    [(topic, sent)] = bench.run(agent(strategy="llm"), wire)
    assert topic == "/conversations/c/a" and "routing_trace" not in sent


def test_a_forward_larger_than_max_message_bytes_completes_instead(bench: Bench) -> None:
    config = agent(strategy="llm").model_copy(update={"agent": agent().agent.model_copy(
        update={"max_message_bytes": 1024})})
    [(topic, sent)] = bench.run(config, v2_task(input="x" * 900))
    assert topic == "/conversations/c/a" and "limit is 1024" in sent["routing_trace"][-1]["reason"]


def test_a_hop_is_a_line_in_the_timeline_and_a_counted_timed_decision(bench: Bench) -> None:
    wire = v2_task()
    bench.run(agent(strategy="llm"), wire)
    [routed] = bench.timeline(wire["task_id"], "routed")
    assert routed["agent"] == "a" and routed["to_agent"] == "b" and routed["strategy"] == "llm"
    assert routed["step"] == 1 and routed["decision_ms"] >= 0 and routed["reason"]
    stats = bench.stats("a")
    assert stats["routing:llm:forwarded"] == "1" and float(stats["routing_seconds:llm"]) >= 0


def test_a_hop_is_told_as_a_routed_progress_event(bench: Bench) -> None:
    bench.run(agent(strategy="llm"), v2_task())
    [routed] = bench.progress.of_type("Routed")
    assert routed["agent_id"] == "a" and routed["metadata"]["to_agent"] == "b"
    assert routed["metadata"]["step_number"] == 1 and routed["metadata"]["strategy"] == "llm"


def test_a_completion_is_no_routed_progress_event(bench: Bench) -> None:
    bench.run(agent(strategy="llm"), v2_task(context=context(2, "b", "c")))
    assert bench.progress.of_type("Routed") == [] and len(bench.progress.of_type("TaskComplete")) == 1


def test_the_end_of_a_workflow_is_a_line_in_the_timeline(bench: Bench) -> None:
    wire = v2_task(context=context(4, "b", "c"))
    bench.run(agent(strategy="llm"), wire)
    [done] = bench.timeline(wire["task_id"], "workflow_complete")
    assert done["steps"] == 5 and done["response_bytes"] == len("say: hi") and "every agent" in done["reason"]
    assert bench.stats("a")["routing:llm:completed"] == "1"


def test_a_workflow_that_visits_an_agent_twice_is_processed_at_each_visit(bench: Bench) -> None:
    bench.directory.agents = [Listed("b"), Listed("c"), Listed("d")]
    first = v2_task()
    assert len(bench.run(agent(strategy="llm"), first)) == 1
    again = {**first, "context": context(2, "a", "b")}
    assert len(bench.run(agent(strategy="llm"), again)) == 1
    assert bench.run(agent(strategy="llm"), again) == []


class BrokenDirectory:
    def routable(self) -> list[Listed]:
        raise redis.ConnectionError("Redis went away")


def test_a_registry_that_cannot_be_read_completes_the_workflow_with_the_work(bench: Bench) -> None:
    bench.directory = BrokenDirectory()  # type: ignore[assignment]
    [(topic, sent)] = bench.run(agent(strategy="llm"), v2_task())
    assert topic == "/conversations/c/a" and sent["response"] == "say: hi"
    assert "registry could not be read" in sent["routing_trace"][-1]["reason"]
