"""Counts this process's Redis round trips, for ``python -m bench`` (on PYTHONPATH only in its runs).

Every round trip, a single command or a whole pipeline, is one ``send_packed_command`` call on a
redis-py connection (kombu's Redis transport uses redis-py too). The count is written to
``$AGENT2389_BENCH_RTT_DIR/<pid>`` ten times a second, so the bench can read it before and after a load.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

_directory = os.environ.get("AGENT2389_BENCH_RTT_DIR")
_count = [0]


def _install(directory: str) -> None:
    from redis.connection import AbstractConnection

    original: Callable[..., None] = AbstractConnection.send_packed_command

    def counted(self: Any, command: Any, check_health: bool = True) -> None:
        _count[0] += 1
        original(self, command, check_health)

    AbstractConnection.send_packed_command = counted  # type: ignore[method-assign]
    path = os.path.join(directory, str(os.getpid()))

    def write_forever() -> None:
        stop = threading.Event()
        while not stop.wait(0.1):
            with open(path + ".tmp", "w") as f:
                f.write(str(_count[0]))
            os.replace(path + ".tmp", path)

    threading.Thread(target=write_forever, name="bench-rtt", daemon=True).start()


if _directory:
    _install(_directory)
