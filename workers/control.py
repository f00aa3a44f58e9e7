"""Celery remote-control commands (``celery -A agent2389 control …``, Flower's buttons) as agent2389 means them.

Registering a command under a built-in name replaces Celery's handler in this worker process; each one here
does what Celery's does and says, in the log and in its reply, what it means for agent2389's tasks.
"""

from __future__ import annotations

import logging
from typing import Any

from celery.worker import control
from celery.worker import state as worker_state

from agent2389.logs import log_fields

log = logging.getLogger("agent2389.workers.control")
FIXED_POOL = ("refused: a worker's threads pool has a fixed size (agent2389 worker --concurrency N); "
              "run more or fewer workers instead")


def revoke(state: Any, task_id: Any, terminate: bool = False, signal: Any = None, **kwargs: Any) -> Any:
    """Revoke task by task id (or list of ids)."""
    ids = {task_id} if isinstance(task_id, str) else set(task_id or ())
    if terminate:
        # Celery would ask the threads pool to kill the task's thread, which it cannot: an error, no revoke.
        log.warning("terminate refused: a running task's thread cannot be stopped; the task(s) are revoked only",
                    extra=log_fields(celery_task_ids=sorted(ids)))
    reply = control.revoke(state, task_id, terminate=False, signal=signal, **kwargs)
    running = sorted(r.id for r in list(worker_state.active_requests) if r is not None and r.id in ids)
    if running:
        # The threads pool cannot stop a thread; the task's answer is published as usual.
        log.warning("revoked task(s) already running here are not stopped and will be answered: %s",
                    ", ".join(running), extra=log_fields(celery_task_ids=running))
    else:
        log.info("task(s) flagged as revoked: one still queued ends with 'cancelled by an operator' when a "
                 "worker takes it; one already answered stays answered", extra=log_fields(celery_task_ids=sorted(ids)))
    return reply


def pool_grow(state: Any, n: int = 1, **kwargs: Any) -> Any:
    """Grow pool by n processes/threads."""
    log.warning("pool_grow %s %s", n, FIXED_POOL)
    return control.nok(FIXED_POOL)


def pool_shrink(state: Any, n: int = 1, **kwargs: Any) -> Any:
    """Shrink pool by n processes/threads."""
    log.warning("pool_shrink %s %s", n, FIXED_POOL)
    return control.nok(FIXED_POOL)


control.control_command(name="revoke", variadic="task_id", signature="[id1 [id2 [... [idN]]]]")(revoke)
control.control_command(name="pool_grow", args=[("n", int)], signature="[N=1]")(pool_grow)
control.control_command(name="pool_shrink", args=[("n", int)], signature="[N=1]")(pool_shrink)
