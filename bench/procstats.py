"""CPU time and peak memory of the processes under test, read from /proc (Linux only).

The kernel keeps each process's peak resident set (VmHWM), so no sampling can miss a peak.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class ProcessUsage:
    name: str
    cpu_s: float
    cpu_percent: float
    peak_rss_mb: float


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds the process has used so far (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            # The command name may contain spaces: the fields we want follow its closing parenthesis.
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICKS


def peak_rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class Watch:
    """CPU used by named processes between ``start`` and ``stop``, and their peak RSS at ``stop``."""

    def __init__(self, processes: dict[str, int]) -> None:
        self._pids = dict(processes)
        self._cpu: dict[str, float] = {}
        self._started = 0.0

    def start(self, now: float) -> None:
        self._started = now
        self._cpu = {name: cpu_seconds(pid) for name, pid in self._pids.items()}

    def stop(self, now: float) -> list[ProcessUsage]:
        wall = max(now - self._started, 1e-9)
        usage = []
        for name, pid in self._pids.items():
            used = cpu_seconds(pid) - self._cpu.get(name, 0.0)
            usage.append(ProcessUsage(name, round(used, 2), round(100 * used / wall, 1), round(peak_rss_mb(pid), 1)))
        return usage


def machine_ticks() -> tuple[int, int]:
    """The whole machine's (busy, total) CPU ticks since boot, from the first line of /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


def busy_share(before: tuple[int, int], after: tuple[int, int]) -> float:
    """The share of the machine's CPU that was busy between two :func:`machine_ticks` readings."""
    total = after[1] - before[1]
    return (after[0] - before[0]) / total if total > 0 else 0.0
