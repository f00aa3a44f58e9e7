"""Celery's task-sent events of one batch of sends, published together as one ``task.multi`` message.

Celery publishes each task-sent event on its own: one Redis ``PUBLISH`` per task, about a fifth of the
bridge's CPU at peak (docs/performance.md). Its workers already send their task events in groups this
way, and Celery's event receivers (Flower, ``celery events``) take either form. Each event is made when
its task is sent (its clock and timestamp are that moment's), only the publishing waits for the batch.
Events are best effort, as Celery's own: a publish that fails is logged and the tasks stay queued.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery
from celery.events import Event
from celery.utils.time import utcoffset

log = logging.getLogger("agent2389.bridge.sent_events")
MULTI_ROUTING_KEY = "task.multi"


class SentEventsPublisher:
    """Where a batch's task-sent events go; one per bridge, shared by its dispatchers."""

    def __init__(self, app: Celery) -> None:
        # Not enabled: like Celery's own dispatcher for task-sent events, it publishes with the caller's producer.
        self._dispatcher = app.events.Dispatcher(enabled=False, buffer_while_offline=False)

    def batch(self) -> SentEvents:
        return SentEvents(self)

    def make(self, event_type: str, fields: dict[str, Any]) -> dict[str, Any]:
        """The event as Celery's dispatcher makes it (hostname, utcoffset, pid, its logical clock)."""
        d = self._dispatcher
        event: dict[str, Any] = Event(event_type, hostname=d.hostname, utcoffset=utcoffset(), pid=d.pid,
                                      clock=d.clock.forward(), **fields)
        return event

    def publish(self, events: list[dict[str, Any]], producer: Any) -> None:
        d = self._dispatcher
        try:
            producer.publish(events, routing_key=MULTI_ROUTING_KEY, exchange=d.exchange.name, declare=[d.exchange],
                             serializer=d.serializer, headers=d.headers, delivery_mode=d.delivery_mode, retry=False)
        except Exception as exc:  # the tasks are queued: an event that cannot go out changes nothing for them
            log.warning("could not publish %d task-sent event(s) (%s)", len(events), type(exc).__name__)


class SentEvents:
    """The task-sent events of one batch; ``send_task(event_dispatcher=…)`` hands each one here.

    Used by one thread, for one batch.
    """

    def __init__(self, publisher: SentEventsPublisher) -> None:
        self._publisher = publisher
        self._events: list[dict[str, Any]] = []

    def publish(self, type: str, fields: dict[str, Any], producer: Any, **_: Any) -> None:
        """What Celery's ``send_task`` calls for a task-sent event: kept for :meth:`flush`."""
        self._events.append(self._publisher.make(type, fields))

    def flush(self, producer: Any) -> None:
        """Publish the events kept so far as one message."""
        if self._events:
            events, self._events = self._events, []
            self._publisher.publish(events, producer)
