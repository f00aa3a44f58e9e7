"""What ``agent2389 web``, ``inspect`` and ``status`` do (their arguments are in web.commands)."""

from __future__ import annotations

import argparse
import errno
import json
import signal
import sys
import time
from typing import Any

import redis

from agent2389.addresses import redacted
from agent2389.config.settings import Settings
from agent2389.logs import setup_logging
from agent2389.ops.cli import load_settings
from agent2389.state.keys import Keys
from agent2389.state.redis_client import INSPECTION, connect_redis
from web import inspection, terminal
from web.api import InvalidQueryError, parse_task_query
from web.app import serve
from web.health import evaluate, overall, redis_down
from web.snapshot import read_snapshot

RENDER = {"workers": terminal.workers_table, "queues": terminal.queues_table,
          "agents": terminal.agents_table, "tasks": terminal.tasks_table}
FROM_SNAPSHOT = {"workers": inspection.workers, "queues": inspection.queues, "agents": inspection.agents}


def run_web(args: argparse.Namespace) -> int:
    settings = load_settings(args, require_config=False)
    # SIGTERM (docker stop, Kubernetes) ends the serve loop like Ctrl-C: the server closes, exit 0.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    port = args.port or settings.web_port
    try:
        serve(settings, port, args.host)
    except OSError as exc:
        # waitress binds before it serves: a port it cannot have is one line, not a traceback.
        if exc.errno not in (errno.EADDRINUSE, errno.EACCES, errno.EADDRNOTAVAIL):
            raise
        reason = "is already in use by another program" if exc.errno == errno.EADDRINUSE else "cannot be used"
        print(f"agent2389 web: port {port} {reason} ({exc.strerror}); choose another with --port or AGENT2389_WEB_PORT",
              file=sys.stderr)
        return 2
    return 0


def _quiet_settings(args: argparse.Namespace) -> Settings:
    """Settings for a one-shot command: only warnings on stderr, the answer alone on stdout."""
    settings = Settings.from_env(args.config)
    setup_logging("WARNING", "pretty")
    return settings


def run_inspect(args: argparse.Namespace) -> int:
    settings = _quiet_settings(args)
    client = connect_redis(settings, INSPECTION)
    try:
        if args.what == "tasks":
            query = parse_task_query(args.agent, args.state, str(args.limit))
            rows: list[dict[str, Any]] = inspection.tasks(client, Keys(settings.key_prefix), query)
        else:
            rows = FROM_SNAPSHOT[args.what](read_snapshot(client, settings))
    except InvalidQueryError as exc:
        print(f"agent2389 inspect: {exc}", file=sys.stderr)
        return 2
    except redis.RedisError as exc:
        print(f"agent2389 inspect: Redis did not answer at {redacted(settings.redis_url)} ({type(exc).__name__})",
              file=sys.stderr)
        return 1
    print(json.dumps(rows, indent=2) if args.json else RENDER[args.what](rows))
    return 0


def run_status(args: argparse.Namespace) -> int:
    """One screen: health, agents, workers, queues and the last errors; exit 0 only when healthy."""
    settings = _quiet_settings(args)
    client = connect_redis(settings, INSPECTION)
    try:
        started = time.perf_counter()
        client.ping()
        redis_ms = (time.perf_counter() - started) * 1000
        snapshot = read_snapshot(client, settings)
        errors = inspection.last_errors(client, Keys(settings.key_prefix))
    except redis.RedisError as exc:
        checks = redis_down(exc, time.time(), settings.redis_url)
        print(terminal.checks_lines(overall(checks), checks))
        return 1
    checks = evaluate(snapshot, redis_ms, addresses=True)
    status = overall(checks)
    agents = inspection.agents(snapshot)
    print("\n\n".join([
        terminal.checks_lines(status, checks),
        "AGENTS\n" + terminal.agents_table(agents),
        "LLM\n" + terminal.llm_table(agents),
        "WORKERS\n" + terminal.workers_table(inspection.workers(snapshot)),
        "QUEUES\n" + terminal.queues_table(inspection.queues(snapshot)),
        "LAST ERRORS\n" + terminal.errors_list(errors),
        *(["RESTARTS (agent2389 up)\n" + terminal.restarts_lines(snapshot.restarts)] if snapshot.restarts else []),
    ]))
    return 0 if status == "healthy" else 1
