"""A helper process that reports on stdout, one line at a time (``ready``, then a JSON result)."""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from bench.services import BenchError
from bench.stack import REPO


class Child:
    def __init__(self, name: str, args: list[str], log_path: Path, env: dict[str, str] | None = None) -> None:
        self.name = name
        self._log = log_path.open("wb")
        self.popen = subprocess.Popen([sys.executable, *args], stdout=subprocess.PIPE, stderr=self._log,
                                      stdin=subprocess.PIPE, env=env, cwd=REPO)
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        return self.popen.pid

    def line(self, timeout_s: float) -> str:
        try:
            text = self._lines.get(timeout=timeout_s)
        except queue.Empty:
            raise BenchError(f"{self.name} said nothing for {timeout_s:.0f} s") from None
        if text is None:
            raise BenchError(f"{self.name} exited with {self.popen.wait()} (see {self._log.name})")
        return text

    def expect(self, word: str, timeout_s: float) -> None:
        text = self.line(timeout_s)
        if text != word:
            raise BenchError(f"{self.name} said {text[:200]!r}, not {word!r}")

    def result(self, timeout_s: float) -> dict[str, Any]:
        """The next JSON object line (libraries print other lines on stdout now and then)."""
        while True:
            text = self.line(timeout_s)
            if text.startswith("{"):
                value: dict[str, Any] = json.loads(text)
                return value

    def stop(self, timeout_s: float = 30.0) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(5)
        if self.popen.stdin is not None:
            self.popen.stdin.close()
        self._reader.join(5)  # it reads to the end of the exited child's output
        if self.popen.stdout is not None:
            self.popen.stdout.close()
        self._log.close()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for raw in self.popen.stdout:
            self._lines.put(raw.decode(errors="replace").strip())
        self._lines.put(None)
