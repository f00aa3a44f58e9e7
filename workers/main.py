"""The worker process: verify the agents, then consume their queues in a Celery threads pool.

LLM calls spend seconds waiting on the network, so one process runs many tasks at once in threads;
docs/architecture.md explains the choice.
"""

from __future__ import annotations

import logging
import os
import socket

import celery.apps.worker
from celery.signals import worker_ready, worker_shutting_down

from agent2389.celery_app import SOFT_SHUTDOWN_S, create_celery
from agent2389.config.settings import Settings
from agent2389.state.keys import queue_name

# Imported for its registrations: revoke and pool resizing as agent2389 means them (workers/control.py).
from workers import control  # noqa: F401
from workers.runtime import WorkerRuntime
from workers.tasks import register_tasks

log = logging.getLogger("agent2389.workers")
DEFAULT_CONCURRENCY = 100


def _say_through_logging(msg: str, f: object = None) -> None:
    log.info("%s", msg.strip())


def run(settings: Settings, concurrency: int = DEFAULT_CONCURRENCY) -> int:
    # Celery prints shutdown notices straight to the terminal; every line we write must be a log line
    # (JSON by default), or the runbook's `kubectl logs | jq` queries stop at the first plain one.
    celery.apps.worker.safe_say = _say_through_logging
    # Celery logs every task twice at INFO ("received", "succeeded"); our "task completed" line says
    # both, and two more JSON lines per task cost measurable CPU (docs/performance.md). Celery reads
    # these levels once, when the worker builds its task handlers, so they must be set before that.
    if not log.isEnabledFor(logging.DEBUG):
        for chatty in ("celery.app.trace", "celery.worker.strategy"):
            logging.getLogger(chatty).setLevel(logging.WARNING)
    runtime = WorkerRuntime(settings, concurrency)
    serving = runtime.prepare()
    if not serving:
        log.error("no agent could be verified; this worker has nothing to serve")
        runtime.shutdown()
        return 1
    app = create_celery(settings)
    register_tasks(app, runtime)

    def ready(sender: object, **kwargs: object) -> None:
        # Only now: Celery has reached Redis and consumes the queues (before, it may still be retrying).
        log.info("worker serving %s with %d threads", ", ".join(serving), concurrency)
        runtime.start(consumer=sender)

    worker_ready.connect(ready, weak=False)
    # SIGTERM is Celery's warm shutdown, which waits for every task however long it runs; hand back what
    # is still running after SOFT_SHUTDOWN_S, well within the orchestrator's grace period.
    worker_shutting_down.connect(
        lambda sender, how, **kwargs: runtime.stop_within(SOFT_SHUTDOWN_S) if how == "Warm" else None, weak=False)
    worker = app.Worker(
        hostname=f"agent2389@{socket.gethostname()}-{os.getpid()}",
        queues=[queue_name(agent_id) for agent_id in serving],
        pool="threads",
        concurrency=concurrency,
        without_mingle=True,
        without_gossip=True,
        # Heartbeats are events: they tell Flower and `celery events` the worker is online.
        without_heartbeat=not settings.celery_events,
        optimization="fair",
        loglevel=settings.log_level,
        quiet=True,
    )
    try:
        worker.start()
    finally:
        runtime.shutdown()
    return int(worker.exitcode or 0)
