"""What a worker published, recorded instead of sent to MQTT."""

from __future__ import annotations

import json
from typing import Any


class Recorder:
    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, topic: str, payload: str) -> None:
        self.sent.append((topic, json.loads(payload)))
