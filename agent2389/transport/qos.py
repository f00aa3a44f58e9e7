"""The Redis transport's QoS: acknowledgements batched per turn of the event loop, unparking on receipt."""

from __future__ import annotations

import logging
import threading
from time import time
from typing import Any

import redis
from kombu.asynchronous import get_event_loop
from kombu.transport import redis as kombu_redis
from kombu.transport import virtual
from kombu.utils.json import dumps

from agent2389.transport.parking import PARKED_IN, parked_key

log = logging.getLogger("agent2389.broker")


class ParkingQoS(kombu_redis.QoS):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Messages a batch fetch took and recorded in Redis already (agent2389/transport/fetching.py).
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
