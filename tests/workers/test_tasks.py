"""The Celery tasks' retry policy (agent2389/retry.py): what hands a delivery back, and what does not."""

from __future__ import annotations

from typing import Any

import pytest
import redis
from celery import Celery
from celery.exceptions import Reject

from agent2389.protocol.errors import ServiceUnavailableError
from workers.tasks import AgentTask


def task_failing_with(exc: Exception) -> Any:
    app = Celery("test-tasks", set_as_current=False)

    @app.task(name="failing", base=AgentTask, shared=False)  # type: ignore[untyped-decorator]
    def failing(agent_id: str, wire: dict[str, Any]) -> str:
        raise exc

    return failing


@pytest.mark.parametrize("failure", [redis.ConnectionError("Redis is down"), ServiceUnavailableError("no PUBACK"),
                                     ConnectionResetError("broker went away")])
def test_an_infrastructure_failure_hands_the_delivery_back_to_its_queue(failure: Exception) -> None:
    with pytest.raises(Reject) as rejected:
        task_failing_with(failure)("a", {})
    assert rejected.value.requeue and rejected.value.reason == type(failure).__name__


def test_a_defect_is_not_handed_back_to_run_again() -> None:
    with pytest.raises(ZeroDivisionError):
        task_failing_with(ZeroDivisionError("x"))("a", {})
