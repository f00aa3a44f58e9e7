"""Subcommands of ``agent2389`` that this package provides (see agent2389.ops.cli)."""

from __future__ import annotations

import argparse

from agent2389.ops.cli import Command, config_argument

INSPECT_TARGETS = ("workers", "queues", "agents", "tasks")


def web_arguments(parser: argparse.ArgumentParser) -> None:
    config_argument(parser)
    parser.add_argument("--port", type=int, help="port to serve on (default: HEALTH_PORT or 8080)")
    parser.add_argument("--host", default="0.0.0.0", help="address to bind (default: all interfaces)")  # noqa: S104


def inspect_arguments(parser: argparse.ArgumentParser) -> None:
    config_argument(parser)
    parser.add_argument("what", choices=INSPECT_TARGETS, help="what to show")
    parser.add_argument("--agent", help="tasks: only this agent's")
    parser.add_argument("--state", help="tasks: only in this state (received, queued, started, completed, failed)")
    parser.add_argument("--limit", type=int, default=20, help="tasks: how many (default 20, at most 500)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


COMMANDS = [
    Command("web", "serve health, metrics (JSON and Prometheus), the inspection API and the dashboard",
            web_arguments, "web.cli:run_web"),
    Command("inspect", "show workers, queues, agents (ours, then every other agent seen on the broker) or recent "
            "tasks, read from Redis", inspect_arguments,
            "web.cli:run_inspect"),
    Command("status", "one screen: health, agents, workers, queues and the last errors (exit 1 unless healthy)",
            config_argument, "web.cli:run_status"),
]
