"""Subcommands of ``agent2389`` that this package provides (see agent2389.cli)."""

from __future__ import annotations

from agent2389.cli import Command

COMMANDS: list[Command] = []
