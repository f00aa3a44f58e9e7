"""kombu's Redis transport, made to survive a Redis restart and a worker killed with a task in transit.

When a worker loses its Redis connection, Celery detaches the broken transport from its connection
(``transport.client = None``), closes its channel (``channel.connection = None``) and connects anew.
The tasks the worker was running still end with an ack or a reject through that old channel, and
kombu then builds a Redis client from those attributes: AttributeError, "Unrecoverable error", and
the worker process exits. Every worker with a task in progress died on every Redis restart
(reliability scenario 5).

Every task pushed onto a queue is also parked (agent2389/transport/parking.py), so one taken off its queue
by a worker that died before recording it goes back instead of being lost (reliability scenario 1c).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from time import time
from typing import Any, TypeVar

import redis
from kombu.transport import redis as kombu_redis
from kombu.utils.json import dumps

from agent2389.transport.fetching import FETCH_BATCH, BatchFetcher
from agent2389.transport.parking import PARKED_IN, ParkingPipeline, ParkingSweeper, parked_key, suspects_key
from agent2389.transport.qos import ParkingQoS

log = logging.getLogger("agent2389.broker")
T = TypeVar("T")


class LeasedChannel(kombu_redis.Channel):
    QoS = ParkingQoS
    # On a lost connection a worker goes on running what it holds and renews those leases
    # (agent2389/transport/leases.py); handing them back to the queue when the broken channel closes would
    # have a second worker run them while the first still does.
    do_restore = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Before kombu's own set-up, which already talks to Redis through conn_or_acquire.
        self._pooled: dict[str, tuple[Any, Any]] = {}
        # Queues consumed without acknowledgements (remote-control replies): never batch-fetched, since the
        # batch records what it takes as unacknowledged, and nothing would ever acknowledge those.
        self._no_ack_queues: set[str] = set()
        super().__init__(*args, **kwargs)

    def basic_consume(self, queue: str, no_ack: bool, *args: Any, **kwargs: Any) -> Any:
        if no_ack:
            self._no_ack_queues.add(queue)
        else:
            self._no_ack_queues.discard(queue)
        return super().basic_consume(queue, no_ack, *args, **kwargs)

    @property
    def connection(self) -> Any:
        return self._transport

    @connection.setter
    def connection(self, value: Any) -> None:
        # A closed channel forgets its transport; the tasks received through it still need it to be
        # acknowledged or handed back.
        if value is not None:
            self._transport = value

    def close(self) -> None:
        if self._qos is not None:
            self._qos.flush_acks()
        super().close()

    @contextmanager
    def conn_or_acquire(self, client: Any = None) -> Iterator[Any]:
        # kombu builds a new redis client for every put, ack and unacked record (about 0.18 ms each with
        # redis-py 8); clients are thread-safe and share the channel's pool, so one per pool is enough.
        if client is not None:
            yield client
            return
        yield self._per_pool("client", lambda pool: self._create_client())

    def _brpop_read(self, **options: Any) -> bool:
        delivered: bool = super()._brpop_read(**options)
        self._fetch_backlog()
        return delivered

    def _fetch_backlog(self) -> None:
        """After a BRPOP brought one message, take what else is waiting, as far as the prefetch allows."""
        room = self.qos.can_consume_max_estimate()
        count = FETCH_BATCH if room is None else min(room, FETCH_BATCH)
        # Each queue by its Redis list, in the order BRPOP asks for them.
        by_key = {self._q_for_pri(q, 0): q for q in self._queue_cycle.items
                  if q in self._active_queues and q not in self._no_ack_queues}
        if count <= 0 or not by_key or self._closing:
            return
        try:
            fetched = self._fetcher().fetch(list(by_key), count, time())
        except redis.RedisError as exc:
            # The messages stay on their queues (or, recorded and never delivered, come back after the
            # visibility timeout): BRPOP takes them one by one.
            log.debug("batch fetch failed (%s)", type(exc).__name__)
            return
        for item in fetched:
            self.qos.recorded.add(item.delivery_tag)
            self.connection._deliver(item.message, by_key[item.queue])

    def _fetcher(self) -> BatchFetcher:
        return self._per_pool("fetcher", lambda pool: BatchFetcher(
            self._plain_client(), self.global_keyprefix, self.unacked_key, self.unacked_index_key))

    def _sweeper(self) -> ParkingSweeper:
        return self._per_pool("sweeper", lambda pool: ParkingSweeper(
            self._plain_client(), self.global_keyprefix, int(self.visibility_timeout)))

    def _plain_client(self) -> redis.Redis:
        """A client on the channel's pool that does not prefix keys (for scripts, given full key names)."""
        return self._per_pool("plain client", lambda pool: redis.Redis(connection_pool=pool))

    def _per_pool(self, name: str, build: Callable[[Any], T]) -> T:
        """One ``name`` per connection pool: kombu replaces the pool when it reconnects."""
        pool = self.pool
        cached = self._pooled.get(name)
        if cached is None or cached[0] is not pool:
            cached = (pool, build(pool))
            self._pooled[name] = cached
        built: T = cached[1]
        return built

    def _put(self, queue: str, message: dict[str, Any], **kwargs: Any) -> None:
        if not _parks(message):
            super()._put(queue, message, **kwargs)
            return
        key = self._q_for_pri(queue, self._get_message_priority(message, reverse=False))
        message["properties"][PARKED_IN] = key
        payload = dumps(message)
        tag = message["properties"]["delivery_tag"]
        batch = kwargs.pop("_publish_batch", None)
        # Parked first: a worker may take the message the moment it is on the queue, and unparks it then.
        if batch is not None:
            batch.add("hset", parked_key(key), tag, payload)
            batch.add("lpush", key, payload)
            return
        with self.conn_or_acquire() as client:
            pipe = client.pipeline(transaction=True)
            pipe.hset(parked_key(key), tag, payload)
            pipe.lpush(key, payload)
            pipe.execute()

    def _do_restore_message(self, payload: dict[str, Any], exchange: str, routing_key: str, pipe: Any,
                            leftmost: bool = False) -> None:
        tag = payload.get("properties", {}).get("delivery_tag")
        parking = ParkingPipeline(pipe, tag) if tag else pipe
        super()._do_restore_message(payload, exchange, routing_key, parking, leftmost)

    def _purge(self, queue: str) -> int:
        purged: int = super()._purge(queue)
        self._forget_parked(queue)
        return purged

    def _delete(self, queue: str, *args: Any, **kwargs: Any) -> None:
        super()._delete(queue, *args, **kwargs)
        self._forget_parked(queue)

    def _forget_parked(self, queue: str) -> None:
        keys = [self._q_for_pri(queue, pri) for pri in self.priority_steps]
        with self.conn_or_acquire() as client:
            client.delete(*[parked_key(k) for k in keys], *[suspects_key(k) for k in keys])

    def sweep_parked(self) -> None:
        """Give back what was taken off the queues this worker consumes by a worker that died with it."""
        sweeper = self._sweeper()
        for queue in list(self.active_queues):
            try:
                returned = sweeper.sweep(self._q_for_pri(queue, 0), time())
            except redis.RedisError as exc:
                log.warning("could not sweep parked messages of %s (%s)", queue, type(exc).__name__)
                return
            if returned:
                log.warning("%d task(s) of %s were taken by a worker that died before recording them; "
                            "back on the queue", len(returned), queue, extra={"delivery_tags": returned})

def _parks(message: dict[str, Any]) -> bool:
    """Whether a message is parked: not a remote-control reply (``celery inspect``, Flower), which its
    caller consumes without acknowledging, so nothing would ever unpark it; a lost reply costs nothing."""
    exchange = message.get("properties", {}).get("delivery_info", {}).get("exchange") or ""
    return not exchange.endswith(".pidbox")


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
