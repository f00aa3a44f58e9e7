"""The ``agent2389`` command: one entry point, one subcommand per process or operator task."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from agent2389 import __version__
from agent2389.config import environment
from agent2389.config.agent import AgentConfig
from agent2389.config.files import inspect_config
from agent2389.config.settings import Settings
from agent2389.logs import flush_logs, setup_logging
from agent2389.protocol.errors import ConfigError
from agent2389.protocol.sanitize import environment_secrets

log = logging.getLogger("agent2389.cli")
Handler = Callable[[argparse.Namespace], int]

# Each package lists its own subcommands; their code is imported only when the subcommand runs.
COMMAND_MODULES = ("agent2389.ops.cli", "agent2389.ops.probe", "bridge.commands", "workers.commands", "web.commands")


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
        flush_logs()
        print(f"agent2389 {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def load_settings(args: argparse.Namespace, require_config: bool = True) -> Settings:
    """Settings for a long-running command, with logging set up and secrets registered for scrubbing."""
    if require_config and not args.config:
        raise ConfigError("--config PATH is required")
    settings = Settings.from_env(args.config)
    secrets = environment_secrets(settings.secret_env_names() | set(environment.names(environment.WEB_AUTH_TOKEN)))
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
    return _connect_mcp_servers(report.agents) if args.connect else 0


def _connect_mcp_servers(agents: list[AgentConfig]) -> int:
    from workers.tools.mcp.probe import probe_servers

    good, bad = probe_servers(agents)
    for line in good:
        print(f"ok: {line}")
    for line in bad:
        print(f"error: {line}", file=sys.stderr)
    return 1 if bad else 0


def _validate_arguments(parser: argparse.ArgumentParser) -> None:
    config_argument(parser)
    parser.add_argument("--connect", action="store_true",
                        help="also start or contact every MCP server the agents use, and list its tools")


def _up_arguments(parser: argparse.ArgumentParser) -> None:
    config_argument(parser)
    parser.add_argument("--workers", type=int, default=1, metavar="N", help="worker processes (default 1)")
    parser.add_argument("--concurrency", type=int, default=100, metavar="N",
                        help="tasks each worker process runs at once (default 100)")
    parser.add_argument("--port", type=int, default=None, help="web app port (default AGENT2389_WEB_PORT or 8080)")
    parser.add_argument("--no-embedded", action="store_true",
                        help="never start a local Redis or MQTT broker, even when none answers")


def _broker_argument(parser: argparse.ArgumentParser) -> None:
    config_argument(parser)
    parser.add_argument("--broker", metavar="URL", help="MQTT broker (default: the config's, AGENT2389_MQTT_URL, or "
                        "mqtt://localhost:1883)")


def _inject_arguments(parser: argparse.ArgumentParser) -> None:
    _broker_argument(parser)
    parser.add_argument("--agent", required=True, help="the agent to send the task to")
    parser.add_argument("text", nargs="?", default=None, help="the task's input, as text")
    parser.add_argument("--input", metavar="JSON", help="the task's input as a JSON value (instead of text)")
    parser.add_argument("--instruction", help="the task's instruction")
    parser.add_argument("--conversation-id", metavar="C", help="conversation id (default: a new one)")
    parser.add_argument("--next", metavar="B,C", help="agents that process the answer in turn (a pipeline)")
    parser.add_argument("--v2", action="store_true", help="start a v2 workflow (PROTOCOL.md §9): agents with a "
                        "[routing] section decide where the work goes next (not with --next)")
    parser.add_argument("--wait", type=float, metavar="S", help="wait up to S seconds (for the agent to be "
                        "available, then for the answer); print the progress events and a v2 answer's routing "
                        "trace on stderr as they arrive, then the answer on stdout")
    parser.add_argument("--json", action="store_true", help="print the answer as the raw JSON message")


def _monitor_arguments(parser: argparse.ArgumentParser) -> None:
    _broker_argument(parser)
    parser.add_argument("--agent", help="only this agent's traffic (default: every agent)")
    parser.add_argument("--format", choices=("pretty", "json"), default="pretty")
    parser.add_argument("--count", type=int, default=None, help="exit after N messages")


def run_up(args: argparse.Namespace) -> int:
    from agent2389.ops.up import run_up as up

    settings = load_settings(args)
    args.port = args.port or settings.web_port
    if args.workers < 1 or args.concurrency < 1:
        raise ConfigError("--workers and --concurrency must be at least 1")
    return up(args, settings)


COMMANDS = [
    Command("validate", "check agent configuration files and report every problem", _validate_arguments,
            "agent2389.ops.cli:run_validate"),
    Command("up", "run the bridge, workers and web app in the foreground, restarting any that dies "
            "(development and demos)",
            _up_arguments, "agent2389.ops.cli:run_up"),
    Command("inject", "publish a task to an agent that announced itself available and, with --wait, print its "
            "answer", _inject_arguments,
            "agent2389.ops.mqtt_tools:run_inject"),
    Command("monitor", "print agents' status, input, progress and conversation traffic as it happens",
            _monitor_arguments, "agent2389.ops.mqtt_tools:run_monitor"),
]

if __name__ == "__main__":
    sys.exit(main())
