"""``python -m bench [scenario ...] [--json]``: run the scenarios, print one table and the targets."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from agent2389.config import environment
from agent2389.config.settings import DEFAULT_REDIS_URL
from bench.procstats import busy_share, machine_ticks
from bench.report import Row, machine, table, target_lines, targets
from bench.runs import Context
from bench.scenarios import SCENARIOS, Sizes
from bench.services import BenchError, redis_pid, start_broker


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("scenarios", nargs="*", choices=[*SCENARIOS, []], metavar="SCENARIO",
                   help=f"any of {', '.join(SCENARIOS)} (default: all, in that order)")
    p.add_argument("--tasks", type=int, default=20_000, help="tasks in the overhead run (others scale from it)")
    p.add_argument("--workers", type=int, default=1, help="worker processes for overhead, baseline and pipeline")
    p.add_argument("--concurrency", type=int, default=100, help="threads per worker process")
    p.add_argument("--window", type=int, default=1000, help="tasks unanswered at once when finding the peak")
    p.add_argument("--scale", default="1,2,4", help="worker process counts of the scale scenario")
    p.add_argument("--latency-seconds", type=float, default=15.0, help="length of the open-loop latency runs")
    p.add_argument("--llm-delay", type=float, default=2.0, help="seconds the fan-in scenario's LLM takes")
    p.add_argument("--in-flight", type=int, default=1000, help="tasks in flight in the fan-in scenario")
    p.add_argument("--fan-in-threads", type=int, default=0,
                   help="threads per worker process in the fan-in scenario (default: in-flight / 2, every task "
                        "in flight on a thread; fewer leave the rest waiting in Redis)")
    p.add_argument("--log-level", default="INFO", help="AGENT2389_LOG_LEVEL of bridge and workers (INFO in production)")
    p.add_argument("--json", metavar="FILE", nargs="?", const="-", help="write the results as JSON (- = stdout)")
    p.add_argument("--keep", action="store_true", help="keep the run directory with every process's log")
    p.add_argument("--count-round-trips", action="store_true",
                   help="count every process's Redis round trips (a small cost of its own)")
    return p


# Ratios taken while something else uses the CPU (another benchmark, a test suite) do not compare with a
# quiet run's: the bench says so before it starts rather than leave it to the numbers.
BUSY_SHARE = 0.25


def _warn_if_busy(seconds: float = 1.0) -> float:
    before = machine_ticks()
    time.sleep(seconds)
    busy = busy_share(before, machine_ticks())
    if busy > BUSY_SHARE:
        print(f"bench: warning: {busy:.0%} of the machine's CPU was busy before the run started; results taken "
              "beside other work do not compare with a quiet run's", file=sys.stderr, flush=True)
    return round(busy, 3)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    chosen = args.scenarios or list(SCENARIOS)
    sizes = Sizes(tasks=args.tasks, workers=args.workers, concurrency=args.concurrency, window=args.window,
                  scale=tuple(int(n) for n in args.scale.split(",")), latency_seconds=args.latency_seconds,
                  llm_delay_s=args.llm_delay, in_flight=args.in_flight,
                  fan_in_threads=args.fan_in_threads)
    redis_url = environment.value(environment.REDIS_URL, DEFAULT_REDIS_URL)
    run_dir = Path(tempfile.mkdtemp(prefix="agent2389-bench-"))
    about = machine()
    about["cpu_busy_before"] = _warn_if_busy()
    rows: list[Row] = []
    started = time.time()
    try:
        broker = start_broker(run_dir / "mosquitto")
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    try:
        ctx = Context(redis_url, broker, run_dir, redis_pid(redis_url), args.log_level)
        if args.count_round_trips:
            ctx.rtt_dir = run_dir / "round-trips"
            ctx.rtt_dir.mkdir()
        for name in chosen:
            print(f"running {name} ...", file=sys.stderr, flush=True)
            rows.extend(SCENARIOS[name](ctx, sizes))
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    finally:
        broker.stop()
        if args.keep:
            print(f"logs kept in {run_dir}", file=sys.stderr)
        else:
            shutil.rmtree(run_dir, ignore_errors=True)
    met = targets(rows, fan_in_rate=args.in_flight / args.llm_delay if args.llm_delay else float(args.in_flight))
    about["load_average_after"] = [round(v, 2) for v in os.getloadavg()]
    print(table(rows), file=sys.stderr if args.json == "-" else sys.stdout)
    print("\n" + target_lines(met), file=sys.stderr if args.json == "-" else sys.stdout)
    if args.json:
        document = {"machine": about, "seconds": round(time.time() - started, 1), "sizes": vars(args),
                    "rows": [r.to_json() for r in rows], "targets": [vars(t) for t in met]}
        text = json.dumps(document, indent=2, default=str)
        if args.json == "-":
            print(text)
        else:
            Path(args.json).write_text(text + "\n")
    return 0 if all(r.lost == 0 and r.duplicated == 0 and r.errors == 0 for r in rows) else 1
