"""Put an accepted task on its agent's Celery queue, as JSON, once the ledger says it is new."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Any

from celery import Celery

from agent2389.celery_app import PROCESS_TASK
from agent2389.protocol.envelope import TaskEnvelope
from agent2389.state.keys import queue_name
from bridge.sent_events import SentEvents, SentEventsPublisher

_CELERY_ID_NAMESPACE = uuid.UUID("0f5b8a52-3c43-4c39-9a43-2389a2389a23")


def celery_task_id(fingerprint: str) -> str:
    """The same delivery always gets the same Celery id, so logs and inspection line up."""
    return str(uuid.uuid5(_CELERY_ID_NAMESPACE, fingerprint))


class Enqueuer:
    def __init__(self, app: Celery) -> None:
        self._app = app
        self._sent_events = SentEventsPublisher(app)

    def enqueue(self, agent_id: str, envelope: TaskEnvelope) -> str:
        """Send the task; raises the broker's connection error when Redis cannot take it."""
        return self._send(agent_id, envelope, None)

    def enqueue_many(self, agent_id: str, envelopes: Sequence[TaskEnvelope],
                     queued: Callable[[int, str], None]) -> None:
        """Send the tasks in order with one producer, calling ``queued(position, celery_id)`` for each
        once it is in Redis; on an error the rest are not sent. Their task-sent events (when Celery's events
        are on) leave together after the batch, in one message."""
        with self._app.producer_or_acquire() as producer:
            events = self._sent_events.batch()
            try:
                for position, envelope in enumerate(envelopes):
                    queued(position, self._send(agent_id, envelope, producer, events))
            finally:
                events.flush(producer)

    def _send(self, agent_id: str, envelope: TaskEnvelope, producer: Any, events: SentEvents | None = None) -> str:
        task_id = celery_task_id(envelope.pipeline_fingerprint())
        wire: dict[str, Any] = envelope.to_wire()
        self._app.send_task(
            PROCESS_TASK,
            args=[agent_id, wire],
            queue=queue_name(agent_id),
            task_id=task_id,
            retry=False,
            # What Celery's logs, `inspect` and Flower show of the task: which one it is, never its input
            # (and a repr of the whole envelope was a third of what sending costs).
            argsrepr=f"[{agent_id!r}, <task {envelope.task_id} of conversation {envelope.conversation_id}>]",
            kwargsrepr="{}",
            producer=producer,
            event_dispatcher=events,
        )
        return task_id
