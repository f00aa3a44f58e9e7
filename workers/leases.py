"""The deliveries this worker holds, running or reserved, and the leases that keep them here.

A short visibility timeout hands a dead worker's tasks to another one quickly (agent2389/transport/leases.py);
renewing the lease of every task a live worker holds, at each heartbeat, keeps it from taking one from a live one.
"""

from __future__ import annotations

from typing import Any

import redis
from celery.worker import state as worker_state

from agent2389.state.keys import Keys
from agent2389.transport.leases import renew_leases


def held_requests() -> list[Any]:
    """Celery's requests for the tasks this process runs or has reserved, each once."""
    held = (*worker_state.active_requests, *worker_state.reserved_requests)
    return list({id(request): request for request in held if request is not None}.values())


def renew_held_leases(client: redis.Redis, keys: Keys) -> None:
    tags = [r.message.delivery_tag for r in held_requests() if getattr(r, "message", None) is not None]
    renew_leases(client, keys.celery_prefix(), tags)
