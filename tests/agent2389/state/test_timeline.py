"""A task's timeline as bridge and workers write it and the web app reads it."""

from __future__ import annotations

import json

from agent2389.state.timeline import TaskEvent, finish_recorded


def event(name: TaskEvent | str, agent: str = "a") -> str:
    return json.dumps({"event": name, "agent": agent, "at": 1.0})


def test_event_names_are_stored_as_plain_strings() -> None:
    assert json.loads(event(TaskEvent.LLM_CALL)) == {"event": "llm_call", "agent": "a", "at": 1.0}


def test_a_finish_counts_only_when_it_follows_the_agents_latest_start() -> None:
    assert finish_recorded([event("started"), event("completed")], "a")
    assert not finish_recorded([event("started"), event("failed"), event("started")], "a")
    assert not finish_recorded([event("started"), event("completed", agent="b")], "a")


def test_lines_that_are_not_json_are_skipped() -> None:
    assert finish_recorded([event("started"), "{not json", event("failed")], "a")
