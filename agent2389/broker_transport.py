"""kombu's Redis transport, made to survive a Redis restart and a worker killed with a task in transit.

When a worker loses its Redis connection, Celery detaches the broken transport from its connection
(``transport.client = None``), closes its channel (``channel.connection = None``) and connects anew.
The tasks the worker was running still end with an ack or a reject through that old channel, and
kombu then builds a Redis client from those attributes: AttributeError, "Unrecoverable error", and
the worker process exits. Every worker with a task in progress died on every Redis restart
(reliability scenario 5).

Every message pushed onto a queue is also parked (agent2389/parking.py), so one taken off its queue by a
worker that died before recording it goes back instead of being lost (reliability scenario 1c).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from time import time
from typing import Any, TypeVar

import redis
from kombu.asynchronous import get_event_loop
from kombu.transport import redis as kombu_redis
from kombu.transport import virtual
from kombu.utils.json import dumps

from agent2389.fetching import FETCH_BATCH, BatchFetcher
from agent2389.parking import PARKED_IN, ParkingPipeline, ParkingSweeper, parked_key, suspects_key

log = logging.getLogger("agent2389.broker")
T = TypeVar("T")


class ParkingQoS(kombu_redis.QoS):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Messages a batch fetch took and recorded in Redis already (agent2389/fetching.py).
        self.recorded: set[str] = set()
        self._acks: list[str] = []
        self._acks_lock = threading.Lock()

    def ack(self, delivery_tag: str) -> None:
        """Acknowledge in Redis with the other acks of this turn of the worker's event loop, in one round trip.

        Each ack was a transaction of its own, about a quarter of a busy worker's CPU. Deferring it to
        the end of the loop's turn delays it by well under a millisecond; a worker that dies in between
        has its task redelivered, and the ledger drops it as done.
        """
        loop = get_event_loop()
        if loop is None:
            super().ack(delivery_tag)
            return
        with self._acks_lock:
            self._acks.append(delivery_tag)
            first = len(self._acks) == 1
        virtual.QoS.ack(self, delivery_tag)
        if first:
            loop.call_soon(self.flush_acks)

    def flush_acks(self) -> None:
        with self._acks_lock:
            tags, self._acks = self._acks, []
        if not tags:
            return
        try:
            with self.pipe_or_acquire() as pipe:
                for tag in tags:
                    self._remove_from_indices(tag, pipe)
                pipe.execute()
        except (redis.RedisError, *self.channel.connection_errors) as exc:
            log.warning("could not acknowledge %d task(s) (%s); they come back after the visibility timeout "
                        "and are dropped as done", len(tags), type(exc).__name__)

    def append(self, message: Any, delivery_tag: str) -> None:
        """Record the message as unacknowledged and unpark it, in one transaction."""
        if delivery_tag in self.recorded:
            self.recorded.discard(delivery_tag)
            virtual.QoS.append(self, message, delivery_tag)
            return
        delivery = message.delivery_info
        parked_in = message.properties.get(PARKED_IN)
        with self.pipe_or_acquire() as pipe:
            pipe.zadd(self.unacked_index_key, {delivery_tag: time()})
            pipe.hset(self.unacked_key, delivery_tag,
                      dumps([message._raw, delivery["exchange"], delivery["routing_key"]]))
            if parked_in:
                pipe.hdel(parked_key(parked_in), delivery_tag)
            pipe.execute()
        virtual.QoS.append(self, message, delivery_tag)

    def restore_visible(self, start: int = 0, num: int = 10, interval: int = 10) -> None:
        super().restore_visible(start, num, interval)
        if (self._vrestore_count - 1) % (interval or 1):
            return
        self.channel.sweep_parked()


class LeasedChannel(kombu_redis.Channel):
    QoS = ParkingQoS
    # On a lost connection a worker goes on running what it holds and renews those leases
    # (workers/runtime.py); handing them back to the queue when the broken channel closes would
    # have a second worker run them while the first still does.
    do_restore = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Before kombu's own set-up, which already talks to Redis through conn_or_acquire.
        self._pooled: dict[str, tuple[Any, Any]] = {}
        super().__init__(*args, **kwargs)

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
        by_key = {self._q_for_pri(q, 0): q for q in self._queue_cycle.items if q in self._active_queues}
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
                returned = sweeper.sweep(self._q_for_pri(queue, 0))
            except redis.RedisError as exc:
                log.warning("could not sweep parked messages of %s (%s)", queue, type(exc).__name__)
                return
            if returned:
                log.warning("%d task(s) of %s were taken by a worker that died before recording them; "
                            "back on the queue", len(returned), queue, extra={"delivery_tags": returned})

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
