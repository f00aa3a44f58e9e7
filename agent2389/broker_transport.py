"""kombu's Redis transport, made to survive a Redis restart while workers hold tasks.

When a worker loses its Redis connection, Celery detaches the broken transport from its connection
(``transport.client = None``), closes its channel (``channel.connection = None``) and connects anew.
The tasks the worker was running still end with an ack or a reject through that old channel, and
kombu then builds a Redis client from those attributes: AttributeError, "Unrecoverable error", and
the worker process exits. Every worker with a task in progress died on every Redis restart
(reliability scenario 5).
"""

from __future__ import annotations

from typing import Any

from kombu.transport import redis as kombu_redis


class LeasedChannel(kombu_redis.Channel):
    # On a lost connection a worker goes on running what it holds and renews those leases
    # (workers/runtime.py); handing them back to the queue when the broken channel closes would
    # have a second worker run them while the first still does.
    do_restore = False

    @property
    def connection(self) -> Any:
        return self._transport

    @connection.setter
    def connection(self, value: Any) -> None:
        # A closed channel forgets its transport; the tasks received through it still need it to be
        # acknowledged or handed back.
        if value is not None:
            self._transport = value


class RedisTransport(kombu_redis.Transport):
    Channel = LeasedChannel

    @property
    def client(self) -> Any:
        return self._client

    @client.setter
    def client(self, value: Any) -> None:
        # Keep the last connection's settings: the acks of tasks received through this transport
        # must still reach Redis (on a new socket) once it is back.
        if value is not None:
            self._client = value
