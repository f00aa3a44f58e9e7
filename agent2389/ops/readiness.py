"""Whether the stack ``agent2389 up`` started is up yet, and if not, what it is still waiting for.

Up means the web app's ``/ready`` says so (the bridge is connected and subscribed, every agent has a
ready worker and is routable in the agent registry). Until then the services that do not answer are named
by their address (never with a password), with the web app's own reasons, now and then rather than on
every check.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from urllib.parse import urlsplit

from agent2389.addresses import broker_address, redacted
from agent2389.config.settings import Settings
from agent2389.ops.local_services import answers

log = logging.getLogger("agent2389.up")
CHECK_EVERY_S = 1.0
# Starting takes a few seconds; saying what is missing before then would only be noise.
FIRST_WORD_AFTER_S = 3.0
REPEAT_AFTER_S = 15.0


class ReadinessWatch:
    def __init__(self, settings: Settings, port: int) -> None:
        self._settings = settings
        self._url = f"http://127.0.0.1:{port}/ready"
        self._ready = False
        self._next_check = 0.0
        self._said: tuple[str, float] = ("", 0.0)
        self._started = time.monotonic()

    def poll(self) -> bool:
        """True exactly once: at the first check that finds the system ready."""
        now = time.monotonic()
        if self._ready or now < self._next_check:
            return False
        self._next_check = now + CHECK_EVERY_S
        reasons = self.waiting_for()
        if not reasons:
            self._ready = True
            return True
        text = "; ".join(reasons)
        said, at = self._said
        if now - self._started >= FIRST_WORD_AFTER_S and (text != said or now - at >= REPEAT_AFTER_S):
            log.warning("not up yet, still waiting: %s", text)
            self._said = (text, now)
        return False

    def waiting_for(self) -> list[str]:
        reasons = self.unreachable()
        try:
            with urllib.request.urlopen(self._url, timeout=1) as response:  # noqa: S310 (our own loopback URL)
                return reasons if response.status == 200 else [*reasons, "the web app is not ready"]
        except urllib.error.HTTPError as exc:
            try:
                said = json.loads(exc.read()).get("reasons") or []
            except ValueError:
                said = []
            return [*reasons, *(str(r) for r in said)] or ["the web app is not ready"]
        except (OSError, ValueError):
            return [*reasons, "the web app does not answer yet"]

    def unreachable(self) -> list[str]:
        settings = self._settings
        found = []
        parts = urlsplit(settings.redis_url)
        if not answers(parts.hostname or "127.0.0.1", parts.port or 6379):
            found.append(f"Redis at {redacted(settings.redis_url)} does not answer")
        brokers = {broker_address(a.mqtt): a.mqtt for a in settings.agents}
        for broker, mqtt in sorted(brokers.items()):
            if not answers(mqtt.host, mqtt.port):
                found.append(f"the MQTT broker at {broker} does not answer")
        return found
