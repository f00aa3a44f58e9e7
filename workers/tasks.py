"""The one Celery task: thin on purpose; the work is in workers.processing."""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery, Task
from celery.exceptions import Reject
from celery.signals import task_revoked

from agent2389.celery_app import PROCESS_TASK
from agent2389.logs import log_fields
from agent2389.retry import INFRASTRUCTURE_ERRORS
from workers.runtime import WorkerRuntime

log = logging.getLogger("agent2389.workers.tasks")


class AgentTask(Task):  # type: ignore[misc]  # Celery ships no type hints: Task is Any to mypy
    """The base of agent2389's tasks, where a worker applies the retry policy (agent2389/retry.py).

    A failure of the infrastructure hands the delivery back to its queue (or, if Redis is gone too, lets
    its lease lapse): never dropped. Anything else was answered or dropped on purpose by the task itself.
    """

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().__call__(*args, **kwargs)
        except INFRASTRUCTURE_ERRORS as exc:
            raise Reject(type(exc).__name__, requeue=True) from exc


def register_tasks(app: Celery, runtime: WorkerRuntime) -> None:
    @app.task(name=PROCESS_TASK, base=AgentTask, acks_late=True,  # type: ignore[untyped-decorator]
              reject_on_worker_lost=True)
    def process_task(agent_id: str, wire: dict[str, Any]) -> str:
        return runtime.run_task(agent_id, wire)

    def cancelled(sender: Any = None, request: Any = None, **kwargs: Any) -> None:
        """A task revoked (``celery control revoke``, Flower) before it started still gets its one answer.

        Celery discards a revoked task in its event-loop thread and acknowledges it there; our transport
        writes that acknowledgement at the end of the loop's turn (agent2389/transport/qos.py), so the
        error below is published before the task leaves Redis.
        """
        if getattr(sender, "name", None) != PROCESS_TASK:
            return
        args = list(getattr(request, "args", None) or [])
        if len(args) != 2 or not isinstance(args[1], dict):
            log.error("a revoked task had no agent and envelope; nothing to answer")
            return
        try:
            result = runtime.cancel_task(str(args[0]), args[1])
        except INFRASTRUCTURE_ERRORS as exc:
            log.error("could not publish the cancellation of a revoked task (%s); its conversation gets no "
                      "answer", type(exc).__name__, extra=log_fields(celery_task_id=getattr(request, "id", None)))
            return
        log.warning("task revoked by an operator: %s", result,
                    extra=log_fields(celery_task_id=getattr(request, "id", None)))

    task_revoked.connect(cancelled, weak=False)
