"""Subcommands of ``agent2389`` that this package provides (see agent2389.ops.cli)."""

from __future__ import annotations

import argparse

from agent2389.ops.cli import Command, config_argument, load_settings


def run_bridge(args: argparse.Namespace) -> int:
    from bridge.service import run

    return run(load_settings(args))


COMMANDS: list[Command] = [
    Command("bridge", "subscribe to every agent's MQTT input topic and queue its tasks for the workers",
            config_argument, "bridge.commands:run_bridge"),
]
