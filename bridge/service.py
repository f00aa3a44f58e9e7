"""The bridge process: MQTT in, Celery queue out, statuses kept true. ``run(settings)`` until a signal."""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
from types import FrameType

from agent2389.addresses import redacted
from agent2389.celery_app import create_celery
from agent2389.config.settings import Settings
from agent2389.state.keys import Keys
from agent2389.state.ledger import TaskLedger
from agent2389.state.presence import Presence
from agent2389.state.redis_client import connect_redis
from agent2389.state.registry import AgentRegistry
from agent2389.state.stats import StatsRecorder
from bridge.agent_link import AgentLink
from bridge.availability import EXPIRY_HEARTBEATS, AvailabilityMonitor, ConnectionChanges
from bridge.dispatcher import Dispatcher
from bridge.enqueue import Enqueuer
from bridge.inbox import Inbox
from bridge.status_watch import StatusWatcher

log = logging.getLogger("agent2389.bridge")


class Bridge:
    def __init__(self, settings: Settings) -> None:
        keys = Keys(settings.key_prefix)
        client = connect_redis(settings)
        # In the background: the one intake thread per agent waits for no stats round trip.
        stats = self.stats = StatsRecorder(client, keys, background=True)
        ledger = TaskLedger(client, keys, ttl_s=settings.dedup_ttl_s)
        enqueuer = Enqueuer(create_celery(settings))
        changes = ConnectionChanges()
        self.links: list[AgentLink] = []
        self.dispatchers: list[Dispatcher] = []
        for agent in settings.agents:
            # The inbox between them: the link puts what it receives, the dispatcher takes it.
            inbox = Inbox()
            link = AgentLink(agent, f"{settings.key_prefix}-bridge-{agent.id}", inbox, changes)
            self.links.append(link)
            self.dispatchers.append(Dispatcher(link, inbox, ledger, enqueuer, stats))
        presence = Presence(client, keys, ttl_s=settings.worker_ttl_s)
        recorded: set[str] = set()
        self.monitor = AvailabilityMonitor(self.links, changes, client, keys, presence,
                                           redis_name=f"Redis at {redacted(settings.redis_url)}",
                                           heartbeat_s=settings.status_heartbeat_s, recorded=recorded)
        # One subscription to every status on the broker feeds the registry every process reads.
        self.watcher = StatusWatcher(
            settings.agents[0].mqtt, f"{settings.key_prefix}-registry-{socket.gethostname()}-{os.getpid()}",
            AgentRegistry(client, keys), [agent.id for agent in settings.agents],
            own_expiry_s=EXPIRY_HEARTBEATS * settings.status_heartbeat_s, recorded=recorded,
        ) if settings.agents else None
        self.stopped = threading.Event()

    def start(self) -> None:
        for dispatcher in self.dispatchers:
            dispatcher.start()
        for link in self.links:
            link.start()
        self.monitor.start()
        if self.watcher is not None:
            self.watcher.start()
        log.info("bridge started for %d agent(s)", len(self.links))

    def stop(self) -> None:
        """Publish retained ``unavailable`` for every agent and disconnect cleanly."""
        self.monitor.stop()
        for dispatcher in self.dispatchers:
            dispatcher.stop()
        for link in self.links:
            link.stop()
        if self.watcher is not None:
            self.watcher.stop()
        self.stats.flush()
        self.stopped.set()
        log.info("bridge stopped")


def run(settings: Settings) -> int:
    bridge = Bridge(settings)
    stop_requested = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        log.info("received %s; stopping", signal.Signals(signum).name)
        stop_requested.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    bridge.start()
    while not stop_requested.wait(1.0):
        pass
    bridge.stop()
    return 0
