"""The one Celery task: thin on purpose; the work is in workers.processing."""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery
from celery.exceptions import Reject
from celery.signals import task_revoked

from agent2389.celery_app import PROCESS_TASK
from agent2389.logs import log_fields
from workers.runtime import WorkerRuntime
from workers.task_entry import InfrastructureError

log = logging.getLogger("agent2389.workers.tasks")


def register_tasks(app: Celery, runtime: WorkerRuntime) -> None:
    @app.task(name=PROCESS_TASK, acks_late=True, reject_on_worker_lost=True)  # type: ignore[untyped-decorator]
    def process_task(agent_id: str, wire: dict[str, Any]) -> str:
        try:
            return runtime.run_task(agent_id, wire)
        except InfrastructureError as exc:
            # Hand the delivery back (or, if Redis is gone too, let its lease lapse): never drop it.
            raise Reject(str(exc), requeue=True) from exc

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
        except InfrastructureError as exc:
            log.error("could not publish the cancellation of a revoked task (%s); its conversation gets no "
                      "answer", exc, extra=log_fields(celery_task_id=getattr(request, "id", None)))
            return
        log.warning("task revoked by an operator: %s", result,
                    extra=log_fields(celery_task_id=getattr(request, "id", None)))

    task_revoked.connect(cancelled, weak=False)
