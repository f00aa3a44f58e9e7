"""The benchmark harness, run small: every scenario's tasks are all answered once (speed is not tested)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from agent2389.celery_app import TRANSPORT
from bench.celery_baseline import AGENT2389, TRANSPORT_ENV, app_for
from bench.procstats import ProcessUsage, busy_share, machine_ticks
from bench.report import Row, fan_in_ceiling, table, targets
from tests.conftest import REPO

# A small bench run takes 15 s here and over 50 s on a loaded machine: its own limit stays below pytest's,
# so a run that is too slow fails with its output instead of pytest killing the test mid-report.
BENCH_TIMEOUT_S = 100
pytestmark = pytest.mark.timeout(BENCH_TIMEOUT_S + 20)


def row(scenario: str, run: str, throughput: float, lost: int = 0, rss: float = 50.0) -> Row:
    return Row(scenario, run, 1, 10, 10 - lost, lost, 0, 0, 1.0, throughput, {"p50": 1.0, "p95": 2.0, "p99": 3.0},
               [ProcessUsage("worker-1", 1.0, 50.0, rss)])


def test_targets_compare_the_overhead_run_with_the_bare_celery_run() -> None:
    found = {t.name: t for t in targets([row("overhead", "peak", 90), row("baseline", "celery no-op", 100)])}
    assert found["overhead throughput >= 80% of bare Celery no-op"].met
    assert not targets([row("overhead", "peak", 70), row("baseline", "celery no-op", 100)])[0].met


def test_the_events_target_compares_the_peak_with_celery_events_on_and_off() -> None:
    def cost(on: float) -> bool:
        rows = [row("events", "peak, Celery events off", 100), row("events", "peak, Celery events on", on)]
        [found] = [t for t in targets(rows) if t.name.startswith("Celery events")]
        return found.met

    assert cost(on=92) and not cost(on=85)


def test_fan_in_is_measured_against_the_bare_async_sdk_in_the_same_run() -> None:
    def met(fan_in: float) -> bool:
        rows = [row("fan-in", "fake Anthropic 2 s", fan_in), row("fan-in", "bare async SDK, 1000 in flight", 400)]
        [found] = [t for t in targets(rows) if "bare async SDK" in t.name]
        return found.met

    assert met(300) and not met(260)


def test_fan_ins_ceiling_is_what_the_cores_carry_at_a_bare_celery_no_op_plus_a_bare_sdk_call_per_task() -> None:
    def used(scenario: str, run: str, answered: int, *usage: tuple[str, float]) -> Row:
        return Row(scenario, run, 2, answered, answered, 0, 0, 0, 10.0, answered / 10.0, {},
                   [ProcessUsage(name, cpu_s, 50.0, 60.0) for name, cpu_s in usage])

    rows = [used("baseline", "celery no-op", 1000, ("worker-1", 1.5), ("producer", 0.4), ("redis", 0.1)),  # 2 ms
            used("fan-in", "bare async SDK, 1000 in flight", 500, ("async-sdk-1", 0.75), ("async-sdk-2", 0.75)),  # 3
            used("fan-in", "fake Anthropic 2 s", 200, ("worker-1", 5.0), ("fake-llm", 0.2))]  # the fake: 1 ms

    ceiling = fan_in_ceiling(*rows, fan_in_rate=float("inf"))

    assert ceiling == pytest.approx((os.cpu_count() or 1) * 1000 / 6)
    assert fan_in_ceiling(*rows, fan_in_rate=500) == min(ceiling, 500), "capped by 1,000 calls in flight / 2 s"
    [found] = [t for t in targets(rows) if t.name.startswith("fan-in against its ceiling")]
    assert f"20 / {min(ceiling, 500):.0f} tasks/s" in found.measured
    assert not [t for t in targets(rows[1:]) if t.name.startswith("fan-in against its ceiling")], \
        "no ceiling without the no-op's run"


def test_a_lost_answer_or_a_heavy_worker_misses_its_target() -> None:
    found = {t.name: t for t in targets([row("fan-in", "fake Anthropic 2 s", 450, lost=1, rss=250)])}
    assert not found["zero lost, duplicated or failed answers in every run"].met
    assert not found["fan-in peak RSS per worker process < 200 MB"].met
    assert found["fan-in throughput >= 80% of min(500, overhead peak)"].met


def test_the_routing_target_is_5_ms_of_cpu_per_hop_at_every_registry_size_measured() -> None:
    def routing_row(size: str, cpu_s: float) -> Row:
        return Row("routing", f"echo decision, {size}", 0, 1000, 1000, 0, 0, 0, 10.0, 100.0, {},
                   [ProcessUsage("bench", cpu_s, 10.0, 60.0)])

    def met(*rows: Row) -> bool:
        [found] = [t for t in targets(list(rows)) if t.name.startswith("routing decision")]
        return found.met

    assert met(routing_row("10 agents in the registry", 1.0), routing_row("100 agents in the registry", 4.9))
    assert not met(routing_row("10 agents in the registry", 1.0), routing_row("1000 agents in the registry", 26.0))
    assert met(routing_row("10 agents in the registry", 1.0),
               routing_row("1000 agents in the registry read at every hop", 26.0)), "shown, not a target"


def test_the_table_has_a_line_per_run_under_its_header() -> None:
    lines = table([row("overhead", "peak", 90), row("scale", "agent2389 peak", 80)]).splitlines()
    assert len(lines) == 4 and lines[0].startswith("scenario") and "worker-1 50%/50" in lines[2]


def run_bench(tmp_path: Path, redis_url: str, *args: str) -> tuple[dict[str, Any], str]:
    out = tmp_path / "bench.json"
    command = [sys.executable, "-m", "bench", *args, "--tasks", "40", "--window", "20", "--latency-seconds", "1",
               "--json", str(out)]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=BENCH_TIMEOUT_S,
                          env={**os.environ, "REDIS_URL": redis_url})
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(out.read_text())
    for r in result["rows"]:
        assert r["sent"] > 0 and r["answered"] == r["sent"], r
        assert r["lost"] == 0 and r["duplicated"] == 0 and r["errors"] == 0, r
    return result, done.stdout


@pytest.mark.slow
def test_overhead_baseline_and_pipeline_answer_every_task_once(tmp_path: Path, redis_url: str) -> None:
    result, printed = run_bench(tmp_path, redis_url, "overhead", "baseline", "pipeline", "--count-round-trips")
    runs = [(r["scenario"], r["run"]) for r in result["rows"]]
    assert [s for s, _ in runs] == ["overhead", "overhead", "baseline", "baseline", "baseline", "baseline",
                                    "pipeline"]
    assert [r for s, r in runs if r.startswith("celery")] == ["celery no-op", "celery no-op, agent2389 transport"]
    assert "Redis round trips per task" in result["rows"][0]["note"]
    assert "scenario" in printed and "tasks/s" in printed and "[met] zero lost" in printed


@pytest.mark.slow
def test_fan_in_through_the_fake_anthropic_api_answers_every_task_once(tmp_path: Path, redis_url: str) -> None:
    # Fewer threads than tasks in flight: the rest wait in Redis and are answered all the same.
    result, _ = run_bench(tmp_path, redis_url, "fan-in", "--llm-delay", "0.2", "--in-flight", "10",
                          "--fan-in-threads", "3")
    assert [r["run"].split(" ")[0] for r in result["rows"]] == ["fake", "bare", "echo"]
    assert all(r["workers"] == 2 for r in result["rows"])
    ours = [r["run"] for r in result["rows"] if not r["run"].startswith("bare")]
    assert ours and all(run.endswith("10 in flight, 3 threads per process") for run in ours)


@pytest.mark.slow
def test_the_events_scenario_measures_the_peak_with_celery_events_off_then_on(tmp_path: Path, redis_url: str) -> None:
    result, printed = run_bench(tmp_path, redis_url, "events")
    assert [r["run"] for r in result["rows"]] == ["peak, Celery events off", "peak, Celery events on"]
    assert "Celery events cost" in printed


def test_the_bare_celery_baseline_runs_on_kombus_own_transport_unless_asked_for_ours(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(TRANSPORT_ENV, raising=False)
    assert app_for("bench-test").connection_for_write().transport_cls == "redis"
    monkeypatch.setenv(TRANSPORT_ENV, AGENT2389)
    assert app_for("bench-test").connection_for_write().transport_cls == TRANSPORT


@pytest.mark.slow
def test_the_routing_scenario_routes_every_hop_and_reports_its_cpu_per_hop(tmp_path: Path, redis_url: str) -> None:
    result, printed = run_bench(tmp_path, redis_url, "routing")
    assert [r["run"] for r in result["rows"]] == [
        "echo decision, 10 agents in the registry", "echo decision, 100 agents in the registry",
        "echo decision, 1000 agents in the registry", "echo decision, 1000 agents in the registry read at every hop"]
    assert all(r["sent"] == 5 * 6 and "ms CPU per hop" in r["note"] for r in result["rows"])
    assert "routing decision <= 5 ms CPU per hop" in printed


def test_the_machine_s_busy_share_is_the_busy_ticks_over_all_ticks_between_two_readings() -> None:
    assert busy_share((100, 1000), (175, 1100)) == pytest.approx(0.75)
    assert busy_share((100, 1000), (100, 1000)) == 0.0


def test_the_machine_s_ticks_are_read_from_proc_stat() -> None:
    busy, total = machine_ticks()
    assert 0 < busy <= total
