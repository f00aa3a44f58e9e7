"""The Celery application every process shares: the bridge sends with it, workers consume with it.

Each setting is chosen for LLM work that must not be lost; docs/architecture.md explains them.
"""

from __future__ import annotations

from typing import Any

from celery import Celery
from kombu.connection import Connection

from agent2389.config.settings import Settings
from agent2389.state.keys import Keys

PROCESS_TASK = "agent2389.process_task"
# kombu's Redis transport with the fixes a Redis restart needs (see the module); by name, which is also
# how it shows in Celery's connection log lines.
TRANSPORT = "agent2389.transport.redis_transport:RedisTransport"
# kombu names a connection's URL after its transport class. Our transport keeps kombu's Redis layout, so it
# shows as redis://, which is also the only form Flower's broker view (queue lengths) knows.
Connection.resolve_aliases[TRANSPORT] = "redis"
# Well below the 60 s grace period that docker compose and Kubernetes give a stopping worker.
SOFT_SHUTDOWN_S = 30.0


def broker_transport_options(settings: Settings) -> dict[str, Any]:
    return {
        "global_keyprefix": Keys(settings.key_prefix).celery_prefix(),
        # A task held by a worker that stopped renewing its lease goes back to the queue after this.
        "visibility_timeout": settings.visibility_timeout_s,
        "unacked_restore_interval": max(1, settings.visibility_timeout_s // 6),
        "unacked_restore_throttle": 1,
        # A worker killed mid-sweep leaves the sweep's lock behind, and every worker skips its sweeps until
        # the lock expires (kombu's default: 5 minutes). A sweep takes milliseconds, and two at once are
        # safe (each restore is a WATCH transaction), so the lock only needs to outlive one interval.
        "unacked_mutex_expire": max(1, settings.visibility_timeout_s // 6),
        "socket_timeout": 15,
        "socket_connect_timeout": 5,
        "socket_keepalive": True,
        "health_check_interval": 10,
        "retry_on_timeout": True,
    }


def create_celery(settings: Settings) -> Celery:
    app = Celery("agent2389", set_as_current=False)
    app.conf.update(celery_settings(settings))
    return app


def celery_settings(settings: Settings) -> dict[str, Any]:
    return dict(
        broker_url=settings.redis_url,
        broker_transport=TRANSPORT,
        broker_transport_options=broker_transport_options(settings),
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,
        broker_pool_limit=10,
        task_serializer="json",
        accept_content=["json"],
        result_backend=None,
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_acks_on_failure_or_timeout=True,
        task_default_queue="agent2389.default",
        task_create_missing_queues=True,
        worker_prefetch_multiplier=1,
        worker_soft_shutdown_timeout=SOFT_SHUTDOWN_S,
        worker_enable_soft_shutdown_on_idle=True,
        worker_cancel_long_running_tasks_on_connection_loss=False,
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
        # Flower and `celery events` see only what is sent as events; AGENT2389_CELERY_EVENTS=0 turns them off.
        worker_send_task_events=settings.celery_events,
        task_send_sent_event=settings.celery_events,
        enable_utc=True,
    )
