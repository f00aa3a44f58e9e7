"""What every request of one web app shares: its settings, its Redis client and its start time."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import redis
from flask import current_app
from prometheus_client import CollectorRegistry

from agent2389.config.settings import Settings
from agent2389.state.keys import Keys
from web.snapshot import Snapshot, read_snapshot

EXTENSION = "agent2389"


@dataclass
class WebContext:
    settings: Settings
    client: redis.Redis
    started_at: float = field(default_factory=time.time)
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    @property
    def keys(self) -> Keys:
        return Keys(self.settings.key_prefix)

    def snapshot(self) -> Snapshot:
        return read_snapshot(self.client, self.settings)

    def uptime_seconds(self) -> int:
        return int(time.time() - self.started_at)


def web_context() -> WebContext:
    context = current_app.extensions[EXTENSION]
    assert isinstance(context, WebContext)
    return context
