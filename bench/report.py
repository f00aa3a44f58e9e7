"""One row per measured run, the table they print as, the JSON they save as, and the issue's targets."""

from __future__ import annotations

import os
import platform
import subprocess
from dataclasses import asdict, dataclass, field
from importlib.metadata import version
from typing import Any

from bench.procstats import ProcessUsage

HALF_PEAK = "latency at half peak"


@dataclass
class Row:
    scenario: str
    run: str
    workers: int
    sent: int
    answered: int
    lost: int
    duplicated: int
    errors: int
    seconds: float
    throughput: float
    latency_ms: dict[str, float]
    processes: list[ProcessUsage] = field(default_factory=list)
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Target:
    name: str
    measured: str
    met: bool


def _cell(value: float) -> str:
    return f"{value:.1f}" if value < 100 else f"{value:.0f}"


def table(rows: list[Row]) -> str:
    header = ["scenario", "run", "wp", "sent", "answered", "lost", "dup", "err", "tasks/s", "p50 ms", "p95 ms",
              "p99 ms", "CPU % / peak RSS MB per process"]
    lines = [header]
    for r in rows:
        usage = "  ".join(f"{p.name} {p.cpu_percent:.0f}%/{p.peak_rss_mb:.0f}" for p in r.processes)
        lat = r.latency_ms
        lines.append([r.scenario, r.run, str(r.workers), str(r.sent), str(r.answered), str(r.lost),
                      str(r.duplicated), str(r.errors), _cell(r.throughput), _cell(lat.get("p50", 0)),
                      _cell(lat.get("p95", 0)), _cell(lat.get("p99", 0)), usage])
    widths = [max(len(line[i]) for line in lines) for i in range(len(header) - 1)]
    out = []
    for line in lines:
        cells = [c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths, strict=False))]
        out.append(" | ".join([*cells, line[-1]]))
    out.insert(1, "-+-".join("-" * w for w in widths) + "-+-" + "-" * 20)
    return "\n".join(out)


def _find(rows: list[Row], scenario: str, run_prefix: str) -> Row | None:
    return next((r for r in rows if r.scenario == scenario and r.run.startswith(run_prefix)), None)


def _own_cpu_ms(row: Row) -> float:
    """CPU of the measuring process itself per task of the row (in-process scenarios such as routing)."""
    own = next((p for p in row.processes if p.name == "bench"), None)
    return own.cpu_s * 1000 / row.sent if own and row.sent else 0.0


def targets(rows: list[Row], fan_in_rate: float = 500.0) -> list[Target]:
    """The targets of issue 8 that the measured rows allow to check (``fan_in_rate`` = in flight / delay)."""
    found: list[Target] = []
    peak = _find(rows, "overhead", "peak")
    # Bare Celery (kombu's transport), not the row of the no-op on agent2389's transport.
    noop = next((r for r in rows if r.scenario == "baseline" and r.run == "celery no-op"), None)
    if peak and noop and noop.throughput:
        ratio = peak.throughput / noop.throughput
        found.append(Target("overhead throughput >= 80% of bare Celery no-op",
                            f"{peak.throughput:.0f} / {noop.throughput:.0f} tasks/s = {ratio:.0%}", ratio >= 0.8))
    half = _find(rows, "overhead", HALF_PEAK)
    if half:
        p50, p99 = half.latency_ms.get("p50", 0.0), half.latency_ms.get("p99", 0.0)
        found.append(Target("overhead latency at half peak: p50 <= 5 ms, p99 <= 50 ms",
                            f"p50 {p50:.1f} ms, p99 {p99:.1f} ms", p50 <= 5 and p99 <= 50))
    fan_in = _find(rows, "fan-in", "fake Anthropic")
    if fan_in:
        limit = min(fan_in_rate, peak.throughput) if peak else fan_in_rate
        found.append(Target(f"fan-in throughput >= 80% of min({fan_in_rate:.0f}, overhead peak)",
                            f"{fan_in.throughput:.0f} tasks/s vs {0.8 * limit:.0f}", fan_in.throughput >= 0.8 * limit))
        bare = _find(rows, "fan-in", "bare async SDK")
        if bare and bare.throughput:
            ratio = fan_in.throughput / bare.throughput
            found.append(Target("fan-in throughput >= 70% of the bare async SDK (same calls, fake and processes)",
                                f"{fan_in.throughput:.0f} / {bare.throughput:.0f} tasks/s = {ratio:.0%}", ratio >= 0.7))
        if noop and bare and (ceiling := fan_in_ceiling(noop, bare, fan_in, fan_in_rate)):
            found.append(Target(f"fan-in against its ceiling on {_cores()} cores: a bare Celery no-op plus a bare SDK "
                                "call and the fake's side of it, by their CPU per task in this run (report)",
                                f"{fan_in.throughput:.0f} / {ceiling:.0f} tasks/s = {fan_in.throughput / ceiling:.0%}"
                                + (f"; the ceiling is {ceiling / bare.throughput:.0%} of the bare SDK's rate"
                                   if bare.throughput else ""), True))
        rss = max((p.peak_rss_mb for p in fan_in.processes if p.name.startswith("worker")), default=0.0)
        found.append(Target("fan-in peak RSS per worker process < 200 MB", f"{rss:.0f} MB", 0 < rss < 200))
    events_off = _find(rows, "events", "peak, Celery events off")
    events_on = _find(rows, "events", "peak, Celery events on")
    if events_off and events_on and events_off.throughput:
        cost = 1 - events_on.throughput / events_off.throughput
        found.append(Target("Celery events cost <= 10% of peak throughput (else they are off by default)",
                            f"{events_on.throughput:.0f} on vs {events_off.throughput:.0f} off tasks/s = {cost:.0%}",
                            cost <= 0.10))
    scale = [r for r in rows if r.scenario == "scale" and r.run.startswith("agent2389")]
    if scale:
        curve = ", ".join(f"{r.workers}: {r.throughput:.0f}" for r in scale)
        found.append(Target("scale: throughput per worker process count (report the curve)", curve, True))
    routing = [r for r in rows if r.scenario == "routing"]
    if routing:
        per_hop = {r.run.rsplit(", ", 1)[-1]: _own_cpu_ms(r) for r in routing
                   if not r.run.endswith("read at every hop")}
        found.append(Target("routing decision <= 5 ms CPU per hop, without the LLM call",
                            ", ".join(f"{v:.2f} ms ({k})" for k, v in per_hop.items()),
                            all(v <= 5.0 for v in per_hop.values())))
    bad = [r for r in rows if r.lost or r.duplicated or r.errors]
    found.append(Target("zero lost, duplicated or failed answers in every run",
                        ", ".join(f"{r.scenario}/{r.run}" for r in bad) or "none in any run", not bad))
    return found


def _cores() -> int:
    return os.cpu_count() or 1


def _cpu_ms_per_task(row: Row, names: tuple[str, ...] = ()) -> float:
    used = sum(p.cpu_s for p in row.processes if not names or p.name.startswith(names))
    return used * 1000 / row.answered if row.answered else 0.0


def fan_in_ceiling(noop: Row, bare: Row, fan_in: Row, fan_in_rate: float) -> float | None:
    """Tasks/s the machine's cores could carry if a task cost only a bare Celery no-op (worker, producer and
    Redis, at the baseline's peak) plus one bare async SDK call and the fake API's side of it, and no more
    than ``fan_in_rate`` (calls in flight ÷ the fake's delay): an upper bound on fan-in, which pays both
    and more (MQTT in and out, the bridge, the ledger) on the same cores."""
    per_task_ms = _cpu_ms_per_task(noop) + _cpu_ms_per_task(bare) + _cpu_ms_per_task(fan_in, ("fake",))
    return min(_cores() * 1000 / per_task_ms, fan_in_rate) if per_task_ms else None


def target_lines(found: list[Target]) -> str:
    return "\n".join(f"[{'met' if t.met else 'NOT met'}] {t.name}: {t.measured}" for t in found)


def _command_output(args: list[str]) -> str:
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=10, check=False)
    except OSError:
        return "not found"
    return (done.stdout or done.stderr).strip().splitlines()[0] if (done.stdout or done.stderr) else ""


def machine() -> dict[str, Any]:
    with open("/proc/cpuinfo") as f:
        cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), platform.processor())
    with open("/proc/meminfo") as f:
        mem_kb = int(f.readline().split()[1])
    return {
        "cpus": os.cpu_count(), "cpu": cpu, "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "load_average": [round(v, 2) for v in os.getloadavg()], "python": platform.python_version(),
        "celery": version("celery"), "kombu": version("kombu"), "paho-mqtt": version("paho-mqtt"),
        "redis-py": version("redis"), "pydantic": version("pydantic"), "anthropic": version("anthropic"),
        "redis-server": _command_output(["redis-server", "--version"]),
        "mosquitto": _command_output(["mosquitto", "-h"]),
    }
