"""Subcommands of ``agent2389`` that this package provides (see agent2389.ops.cli)."""

from __future__ import annotations

import argparse

from agent2389.logs import write_logs_in_background
from agent2389.ops.cli import Command, config_argument, load_settings


def _worker_arguments(parser: argparse.ArgumentParser) -> None:
    config_argument(parser)
    parser.add_argument("--agents", metavar="A,B", help="serve only these agents (default: all configured)")
    parser.add_argument("--concurrency", type=int, default=None, metavar="N",
                        help="tasks one worker process runs at once, in threads (default 100)")


def run_worker(args: argparse.Namespace) -> int:
    from workers.main import DEFAULT_CONCURRENCY, run

    settings = load_settings(args)
    if args.agents:
        settings = settings.only([a.strip() for a in args.agents.split(",") if a.strip()])
    concurrency = args.concurrency or DEFAULT_CONCURRENCY
    if concurrency < 1:
        raise SystemExit("agent2389 worker: --concurrency must be at least 1")
    # Hundreds of task threads log; they must not wait for each other's writes.
    write_logs_in_background()
    return run(settings, concurrency)


COMMANDS: list[Command] = [
    Command("worker", "run a Celery worker that answers the tasks of the configured agents", _worker_arguments,
            "workers.commands:run_worker"),
]
