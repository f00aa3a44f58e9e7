"""Progress events leave a worker here: best effort, QoS 0, never in the way of a task (PROTOCOL.md §10).

A task thread only puts the event in a bounded queue and goes on; one thread hands the events to the
worker's MQTT client. An event is dropped, and counted, when the queue is full, when the broker is not
connected, or when the client already holds ``MAX_UNSENT`` events it could not write to the socket yet
(a slow or stalled connection): answers and errors, which share that connection, come first. Drops are
logged and counted (``agent2389_progress_events_dropped``).
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections import deque

import paho.mqtt.client as paho

from agent2389.state.stats import StatsRecorder

log = logging.getLogger("agent2389.workers.progress")
QUEUE_SIZE = 10_000
MAX_UNSENT = 1_000
# paho forgets the QoS 0 messages it had not written when the connection drops, without a word: an event
# unsent for this long is taken to be gone.
UNSENT_FORGOTTEN_S = 10.0
REPORT_EVERY_S = 5.0


class ProgressPublisher:
    def __init__(self, client: paho.Client, connected: threading.Event, stats: StatsRecorder | None = None) -> None:
        self._client = client
        self._connected = connected
        self._stats = stats
        self._queue: queue.Queue[tuple[str, str] | None] = queue.Queue(QUEUE_SIZE)
        self._unsent: deque[tuple[float, paho.MQTTMessageInfo]] = deque()
        self._drop_lock = threading.Lock()
        self.dropped = 0
        self._reported = 0
        self._thread = threading.Thread(target=self._send_forever, name="progress", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def emit(self, topic: str, payload: str) -> None:
        try:
            self._queue.put_nowait((topic, payload))
        except queue.Full:
            self._drop()

    def stop(self, timeout_s: float = 2.0) -> None:
        """Send what is queued (for at most ``timeout_s``), then stop."""
        if not self._thread.is_alive():
            return
        with contextlib.suppress(queue.Full):
            self._queue.put(None, timeout=timeout_s)
        self._thread.join(timeout_s)
        self._report()

    def _send_forever(self) -> None:
        last_report = time.monotonic()
        while True:
            try:
                item = self._queue.get(timeout=REPORT_EVERY_S)
                if item is None:
                    return
                self._send(*item)
            except queue.Empty:
                pass
            if time.monotonic() - last_report >= REPORT_EVERY_S:
                self._report()
                last_report = time.monotonic()

    def _send(self, topic: str, payload: str) -> None:
        now = time.monotonic()
        while self._unsent and (self._unsent[0][1].is_published() or now - self._unsent[0][0] > UNSENT_FORGOTTEN_S):
            self._unsent.popleft()
        if not self._connected.is_set() or len(self._unsent) >= MAX_UNSENT:
            self._drop()
            return
        try:
            info = self._client.publish(topic, payload, qos=0)
        except (ValueError, OSError):  # an unpublishable topic, a socket gone mid-call: both only this event
            self._drop()
            return
        if info.rc != paho.MQTT_ERR_SUCCESS:
            self._drop()
        elif not info.is_published():
            self._unsent.append((now, info))

    def _drop(self) -> None:
        with self._drop_lock:
            self.dropped += 1

    def _report(self) -> None:
        with self._drop_lock:
            new, self._reported = self.dropped - self._reported, self.dropped
        if new:
            log.warning("dropped %d progress event(s): the MQTT broker was unreachable or too slow", new)
            if self._stats is not None:
                self._stats.progress_dropped(new)
