"""The one Celery task: thin on purpose; the work is in workers.processing."""

from __future__ import annotations

from typing import Any

from celery import Celery
from celery.exceptions import Reject

from agent2389.celery_app import PROCESS_TASK
from workers.runtime import InfrastructureError, WorkerRuntime


def register_tasks(app: Celery, runtime: WorkerRuntime) -> None:
    @app.task(name=PROCESS_TASK, acks_late=True, reject_on_worker_lost=True)  # type: ignore[untyped-decorator]
    def process_task(agent_id: str, wire: dict[str, Any]) -> None:
        try:
            runtime.run_task(agent_id, wire)
        except InfrastructureError as exc:
            # Hand the delivery back (or, if Redis is gone too, let its lease lapse): never drop it.
            raise Reject(str(exc), requeue=True) from exc
