"""The one retry policy: which failures are the infrastructure's, so the same delivery is tried again.

Redis, the Celery broker or the MQTT broker failing is no fault of the task, and trying again later can
succeed: the bridge keeps such a message unacknowledged and tries again with backoff
(bridge/dispatcher.py); a worker hands the delivery back to its queue (``AgentTask`` in workers/tasks.py).
Every other failure is the task's own: it is answered once with its protocol error
(agent2389/protocol/errors.py) and never retried; so is any failure of the LLM run itself. Within one
task, only a tool call is tried again, when the tool raised ``RetryableToolError``, up to the tool's
``retries`` (workers/tools/executor.py).
"""

from __future__ import annotations

import redis
from kombu.exceptions import OperationalError

from agent2389.protocol.errors import ServiceUnavailableError

# OSError covers sockets (ConnectionError, TimeoutError) and running out of file descriptors.
INFRASTRUCTURE_ERRORS: tuple[type[Exception], ...] = (
    redis.RedisError, OperationalError, OSError, ServiceUnavailableError,
)
