"""A deadline for a warm shutdown: Celery's waits for every running task, however long it takes."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable

from agent2389.logs import flush_logs
from workers.leases import held_requests

log = logging.getLogger("agent2389.workers.runtime")


def stop_within(seconds: float, stopping: threading.Event, before_exit: Callable[[], None]) -> None:
    """Unless ``stopping`` is set within ``seconds``, hand every task still held back to the queue, call
    ``before_exit`` and end the process."""
    threading.Thread(target=_hand_back_after, args=(seconds, stopping, before_exit), name="shutdown-deadline",
                     daemon=True).start()


def _hand_back_after(seconds: float, stopping: threading.Event, before_exit: Callable[[], None]) -> None:
    if stopping.wait(seconds):
        return
    held = held_requests()
    log.warning("still running %d task(s) after %.0f s of shutdown; handing them back to the queue",
                len(held), seconds)
    for request in held:
        try:
            # Straight to Redis: Celery would defer the reject to its event loop, which has stopped.
            request.message.reject(requeue=True)
        except Exception as exc:
            log.warning("could not hand a task back (%s); its lease expires instead", type(exc).__name__)
    before_exit()
    flush_logs()
    # Now, before a task still running here publishes an answer that another worker will publish too.
    os._exit(0)
