"""A task's timeline: the events bridge and workers record for each task, in a Redis list per task.

The web app's inspection (web/inspection.py) reads them back to say where a task is. The event names
are stored as they are written here, so they must never change.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any

from agent2389.state.keys import Keys
from agent2389.state.stats_batch import StatsBatch

RECENT_TASKS = 1000
TIMELINE_TTL_S = 24 * 3600


class TaskEvent(StrEnum):
    RECEIVED = "received"  # the bridge accepted the MQTT message
    QUEUED = "queued"  # the bridge sent it to the agent's Celery queue
    STARTED = "started"  # a worker began an attempt (one per attempt)
    COMPLETED = "completed"
    FAILED = "failed"
    LLM_CALL = "llm_call"
    TOOL_CALL = "tool_call"
    ROUTED = "routed"  # a v2 workflow's hop: this agent forwarded the task (workers/routing)
    WORKFLOW_COMPLETE = "workflow_complete"  # the agent that completed a v2 workflow, and why


# Events that move a task from one state to the next; the others are steps inside the current state.
LIFECYCLE = (TaskEvent.RECEIVED, TaskEvent.QUEUED, TaskEvent.STARTED, TaskEvent.COMPLETED, TaskEvent.FAILED)
FINISHED = (TaskEvent.COMPLETED, TaskEvent.FAILED)


def record_event(batch: StatsBatch, keys: Keys, task_id: str, agent_id: str, event: TaskEvent,
                 **data: Any) -> None:
    """Append ``event`` (and the ``data`` that is not None) to the task's timeline (at the time the record
    was made: ``batch.now``); the task becomes recent."""
    now = batch.now
    entry = {"event": event, "agent": agent_id, "at": now, **{k: v for k, v in data.items() if v is not None}}
    timeline = keys.task_timeline(task_id)
    batch.push_tail(timeline, json.dumps(entry))
    batch.expire(timeline, TIMELINE_TTL_S)
    batch.score(keys.recent_tasks(), task_id, now, keep=RECENT_TASKS)


def finish_recorded(timeline: list[Any], agent_id: str) -> bool:
    """Whether ``agent_id``'s latest start of the task in ``timeline`` was followed by its finish."""
    finished = False
    for raw in timeline:
        try:
            event = json.loads(raw)
        except ValueError:
            continue
        if isinstance(event, dict) and event.get("agent") == agent_id:
            if event.get("event") == TaskEvent.STARTED:
                finished = False
            elif event.get("event") in FINISHED:
                finished = True
    return finished
