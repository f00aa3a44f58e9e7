"""Celery settings for Flower (docker compose's `flower` profile): agent2389's broker and key prefix.

agent2389 keeps Celery's keys under ``<AGENT2389_KEY_PREFIX>:celery:`` (agent2389/keys.py); Flower must
use the same prefix to see the queues, workers and task events.
"""

import os

broker_url = os.environ.get("REDIS_URL", "redis://redis:6379/0")
broker_transport_options = {"global_keyprefix": os.environ.get("AGENT2389_KEY_PREFIX", "agent2389") + ":celery:"}
broker_connection_retry_on_startup = True
accept_content = ["json"]
