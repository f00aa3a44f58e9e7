"""Imported at start-up by every Python process that has this directory on PYTHONPATH (scenario 9 only).

It makes the echo provider kill its whole worker process on a task whose input contains ``POISON``,
the way a crash in a native library or the kernel's OOM killer ends a worker: no exception, no
cleanup, nothing the worker could catch.
"""

from __future__ import annotations

import os
import signal
from typing import Any


def _poison_the_echo_provider() -> None:
    try:
        from workers.llm import echo
    except ImportError:
        return
    answer = echo.EchoRunner.run

    def run(self: Any, request: Any) -> str:
        if "POISON" in str(request.input):
            os.kill(os.getpid(), signal.SIGKILL)
        return answer(self, request)

    echo.EchoRunner.run = run  # type: ignore[method-assign]


_poison_the_echo_provider()
