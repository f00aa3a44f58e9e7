"""One agent's received messages, handed from paho's network thread to its dispatcher's thread.

The dispatcher takes them in batches: under a backlog, one claim and one confirm serve many messages.
"""

from __future__ import annotations

import queue

import paho.mqtt.client as paho

_STOP = object()
# The most messages taken in with one claim and one confirm (each is still sent on its own).
BATCH_MAX = 64


class Inbox:
    """One agent's received messages, from paho's network thread to its dispatcher's thread."""

    def __init__(self) -> None:
        self._queue: queue.Queue[object] = queue.Queue()

    def put(self, message: paho.MQTTMessage) -> None:
        """Called on paho's network thread: only a queue put."""
        self._queue.put(message)

    def close(self) -> None:
        self._queue.put(_STOP)

    def take(self) -> tuple[list[paho.MQTTMessage], bool]:
        """Wait for a message, then take whatever else is waiting, up to BATCH_MAX; True when closed."""
        messages: list[paho.MQTTMessage] = []
        item = self._queue.get()
        while item is not _STOP:
            assert isinstance(item, paho.MQTTMessage)
            messages.append(item)
            if len(messages) >= BATCH_MAX:
                return messages, False
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return messages, False
        return messages, True
