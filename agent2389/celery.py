"""The Celery app that Celery's own tools find: ``celery -A agent2389 inspect ping``, ``purge``, ``events``,
``control revoke``, ``flower``.

It is configured like ``agent2389 worker`` (the broker, key prefix and transport from
``AGENT2389_REDIS_URL``, ``AGENT2389_KEY_PREFIX``, ``AGENT2389_VISIBILITY_TIMEOUT``), read when a command
first needs the configuration, not at import; importing it connects to nothing. Workers are started with
``agent2389 worker``, which verifies the agents first; ``celery -A agent2389 worker`` says so and exits.
"""

from __future__ import annotations

from typing import Any

from celery import Celery
from celery.signals import celeryd_init

from agent2389.celery_app import celery_settings
from agent2389.config.settings import Settings

app = Celery("agent2389", set_as_current=False)
app.add_defaults(lambda: celery_settings(Settings.from_env(None)))


def _refuse_to_run_a_worker(sender: Any = None, instance: Any = None, **kwargs: Any) -> None:
    if getattr(instance, "app", None) is app:
        raise SystemExit("celery -A agent2389 worker: start workers with `agent2389 worker --config PATH`, which "
                         "verifies the agents and registers their task; `celery -A agent2389` is for inspect, "
                         "control, purge, events and flower")


celeryd_init.connect(_refuse_to_run_a_worker, weak=False)
