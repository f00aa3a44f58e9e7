"""The ``agent2389`` command: one entry point, one subcommand per process or operator task."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from agent2389 import __version__
from agent2389.config_loader import inspect_config
from agent2389.errors import ConfigError
from agent2389.logs import setup_logging
from agent2389.sanitize import environment_secrets
from agent2389.settings import Settings

log = logging.getLogger("agent2389.cli")
Handler = Callable[[argparse.Namespace], int]

# Each package lists its own subcommands; their code is imported only when the subcommand runs.
COMMAND_MODULES = ("agent2389.cli", "agent2389.probe", "bridge.commands", "workers.commands", "web.commands")


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    target: str  # "module:function" taking the parsed arguments, returning the exit code


def all_commands() -> dict[str, Command]:
    commands: dict[str, Command] = {}
    for module_name in COMMAND_MODULES:
        module = importlib.import_module(module_name)
        commands.update((c.name, c) for c in module.COMMANDS)
    return commands


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="agent2389",
        description="Run and operate 2389 protocol agents on MQTT with a pool of Celery workers.",
    )
    parser.add_argument("--version", action="version", version=f"agent2389 {__version__}")
    parser.add_argument("--config", dest="global_config", metavar="PATH",
                        help="agent file or directory of agent files (may also follow the subcommand)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in all_commands().values():
        child = sub.add_parser(command.name, help=command.help, description=command.help)
        command.add_arguments(child)
    return parser


def config_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="PATH", help="agent file or directory of agent files")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.config = getattr(args, "config", None) or args.global_config
    module_name, _, function_name = all_commands()[args.command].target.partition(":")
    handler: Handler = getattr(importlib.import_module(module_name), function_name)
    try:
        return handler(args)
    except ConfigError as exc:
        print(f"agent2389 {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def load_settings(args: argparse.Namespace, require_config: bool = True) -> Settings:
    """Settings for a long-running command, with logging set up and secrets registered for scrubbing."""
    if require_config and not args.config:
        raise ConfigError("--config PATH is required")
    settings = Settings.from_env(args.config)
    secrets = environment_secrets(settings.secret_env_names() | {"WEB_AUTH_TOKEN"})
    setup_logging(settings.log_level, settings.log_format, secrets)
    log.info("Configuration loaded", extra={"fields": {"agents": [a.id for a in settings.agents]}})
    return settings


def run_validate(args: argparse.Namespace) -> int:
    if not args.config:
        print("agent2389 validate: --config PATH is required", file=sys.stderr)
        return 2
    report = inspect_config(args.config)
    for problem in report.errors:
        print(f"error: {problem}", file=sys.stderr)
    for problem in report.warnings:
        print(f"warning: {problem}", file=sys.stderr)
    if report.errors:
        count = len(report.errors)
        print(f"{args.config}: invalid ({count} problem{'s' if count != 1 else ''})", file=sys.stderr)
        return 1
    settings = Settings.from_env(args.config)
    setup_logging(settings.log_level, settings.log_format)
    for agent in report.agents:
        tools = ", ".join(agent.tools) or "no tools"
        print(f"ok: {agent.id} ({agent.source}): llm {agent.llm.provider}/{agent.llm.model}, {tools}, "
              f"broker {agent.mqtt.host}:{agent.mqtt.port}")
    log.info("Configuration loaded", extra={"fields": {"agents": [a.id for a in report.agents]}})
    return 0


COMMANDS = [
    Command("validate", "check agent configuration files and report every problem", config_argument,
            "agent2389.cli:run_validate"),
]

if __name__ == "__main__":
    sys.exit(main())
