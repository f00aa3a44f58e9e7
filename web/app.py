"""The operations web app: ``create_app(settings)`` and ``serve(settings, port)``.

Health and metrics stay open (probes and Prometheus need them); inspection and the dashboard need
the bearer token when ``AGENT2389_WEB_AUTH_TOKEN`` is set. No request calls Celery ``inspect`` or waits long
for a dead service: everything is read from Redis with short time-outs.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from typing import Any

import redis
from flask import Flask, Request, Response, jsonify, request
from flask.json.provider import DefaultJSONProvider
from prometheus_client.exposition import choose_encoder, generate_latest
from prometheus_flask_exporter import PrometheusMetrics
from waitress.server import BaseWSGIServer, MultiSocketServer, create_server
from werkzeug.exceptions import HTTPException

from agent2389 import __version__
from agent2389.config.settings import Settings
from agent2389.state.redis_client import INSPECTION, connect_redis
from web.aggregate import metrics_document
from web.api import api
from web.context import EXTENSION, WebContext, web_context
from web.dashboard import dashboard
from web.headers import add_security_headers
from web.health import Check, evaluate, overall, readiness, redis_down
from web.prometheus import SystemCollector
from web.snapshot import Snapshot

log = logging.getLogger("agent2389.web")

ENDPOINTS = {
    "/health": "overall health with the mqtt, redis, workers, llm and task_processing checks (503 unless healthy)",
    "/ready": "readiness probe: bridge connected and subscribed, every agent has a ready worker and is announced",
    "/live": "liveness probe: the web process serves",
    "/metrics": "metrics as JSON; Prometheus text with an Accept header or ?format=prometheus",
    "/api/workers": "workers: host, pid, agents, concurrency, active and processed tasks, heartbeat",
    "/api/queues": "waiting tasks per agent queue",
    "/api/agents": "agents: status, workers, throughput, error rate",
    "/api/tasks?agent=&state=&limit=": "recent tasks",
    "/api/tasks/<task_id>": "one task's timeline",
    "/dashboard": "the operations dashboard",
}
PROMETHEUS_TYPES = ("application/openmetrics-text", "text/plain")


class InOrderJSON(DefaultJSONProvider):
    """Keys in the order the documents are built (status first), not sorted."""

    sort_keys = False


def create_app(settings: Settings, client: redis.Redis | None = None) -> Flask:
    app = Flask(__name__)
    context = WebContext(settings, client if client is not None else connect_redis(settings, INSPECTION))
    app.extensions[EXTENSION] = context
    app.json = InOrderJSON(app)

    context.registry.register(SystemCollector(context.snapshot))
    PrometheusMetrics(app, path=None, registry=context.registry, defaults_prefix="agent2389", group_by="endpoint")

    app.register_blueprint(api)
    app.register_blueprint(dashboard)
    app.add_url_rule("/", "index", index)
    app.add_url_rule("/health", "health", health)
    app.add_url_rule("/ready", "ready", ready)
    app.add_url_rule("/live", "live", live)
    app.add_url_rule("/metrics", "metrics", metrics)
    app.after_request(add_security_headers)
    app.register_error_handler(HTTPException, http_error)
    app.register_error_handler(Exception, unexpected_error)
    return app


def index() -> Response:
    return jsonify(service="agent2389", version=__version__, endpoints=ENDPOINTS)


def live() -> Response:
    return jsonify(alive=True, timestamp=int(time.time()), uptime_seconds=web_context().uptime_seconds())


def system_health() -> tuple[dict[str, Check], Snapshot | None]:
    """The checks, from one snapshot; a Redis outage becomes the checks' answer, never an error."""
    context = web_context()
    started = time.perf_counter()
    try:
        context.client.ping()
        redis_ms = (time.perf_counter() - started) * 1000
        snapshot = context.snapshot()
    except redis.RedisError as exc:
        return redis_down(exc, time.time()), None
    return evaluate(snapshot, redis_ms), snapshot


def health() -> tuple[Response, int]:
    checks, snapshot = system_health()
    status = overall(checks)
    body = {
        "status": status,
        "timestamp": int(time.time()),
        "uptime_seconds": web_context().uptime_seconds(),
        "version": __version__,
        "agents": snapshot.expected_agents if snapshot else [],
        "checks": {name: check.to_json() for name, check in checks.items()},
    }
    return jsonify(body), 200 if status == "healthy" else 503


def ready() -> tuple[Response, int]:
    try:
        is_ready, reasons = readiness(web_context().snapshot())
    except redis.RedisError as exc:
        is_ready, reasons = False, [f"Redis did not answer ({type(exc).__name__})"]
    return jsonify(ready=is_ready, reasons=reasons, timestamp=int(time.time())), 200 if is_ready else 503


def prometheus_requested(req: Request) -> bool:
    """Prometheus asks for its formats by name; curl (``*/*``) and browsers get JSON."""
    fmt = req.args.get("format", "").lower()
    if fmt in ("prometheus", "openmetrics"):
        return True
    if fmt == "json":
        return False
    wanted: dict[str, float] = {}
    for part in req.headers.get("Accept", "").split(","):
        media, *params = [p.strip() for p in part.split(";")]
        quality = next((p.partition("=")[2] for p in params if p.startswith("q=")), "1")
        try:
            wanted[media.lower()] = max(wanted.get(media.lower(), 0.0), float(quality))
        except ValueError:
            continue
    best = max((wanted.get(media, 0.0) for media in PROMETHEUS_TYPES), default=0.0)
    return best > 0 and best >= wanted.get("application/json", 0.0)


def metrics() -> Response | tuple[Response, int]:
    if prometheus_requested(request):
        return prometheus_text()
    context = web_context()
    checks, snapshot = system_health()
    if snapshot is None:
        return jsonify(error="redis_unavailable", message=checks["redis"].message,
                       timestamp=int(time.time())), 503
    status = overall(checks)
    bridge = snapshot.bridge
    lifecycle: dict[str, Any] = {
        "current_state": status,
        "healthy": status == "healthy",
        "uptime_seconds": context.uptime_seconds(),
        "bridge_uptime_seconds": int(snapshot.taken_at - bridge.started_at) if bridge else 0,
        "workers_online": len(snapshot.live_workers()),
        "last_health_check": int(snapshot.taken_at),
    }
    return jsonify(metrics_document(snapshot, lifecycle))


def prometheus_text() -> Response:
    registry = web_context().registry
    if request.args.get("format", "").lower() == "prometheus":
        return Response(generate_latest(registry), content_type="text/plain; version=0.0.4; charset=utf-8")
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    return Response(encoder(registry), content_type=content_type)


def http_error(error: HTTPException) -> tuple[Response, int]:
    code = error.code or 500
    return jsonify(error=(error.name or "error").lower().replace(" ", "_"), message=error.description), code


def unexpected_error(error: Exception) -> tuple[Response, int]:
    log.exception("request failed: %s", type(error).__name__)
    return jsonify(error="internal_error", message="the request failed; see the web app's log"), 500


Server = BaseWSGIServer | MultiSocketServer


def make_server(settings: Settings, port: int | None = None, host: str = "0.0.0.0") -> Server:  # noqa: S104
    """A waitress server for the app, not yet running: ``.run()`` serves, ``.close()`` stops."""
    warn_when_exposed(settings, host)
    app = create_app(settings)
    server: Server = create_server(app, host=host, port=settings.web_port if port is None else port, threads=8,
                                   ident="agent2389")
    return server


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def warn_when_exposed(settings: Settings, host: str) -> bool:
    """Say loudly that the dashboard and ``/api`` (task content) are open to anyone who can reach ``host``."""
    if settings.web_auth_token or is_loopback(host):
        return False
    log.warning(
        "AGENT2389_WEB_AUTH_TOKEN is not set and the web app listens on a non-loopback address: anyone who can reach "
        "it reads /api and the dashboard (task content). Set AGENT2389_WEB_AUTH_TOKEN or bind with --host 127.0.0.1.",
        extra={"fields": {"host": host}},
    )
    return True


def stop_server(server: Server) -> None:
    """Stop a server made by :func:`make_server` from another thread; its ``run()`` then returns."""
    server.task_dispatcher.shutdown()
    if isinstance(server, BaseWSGIServer):
        # Closed by the server's own loop thread (waitress runs a trigger's thunks there): closed from this
        # thread, the listening socket could vanish under the loop's select() (EBADF in that thread).
        trigger: Any = server.trigger  # waitress's stubs type it loosely
        trigger.pull_trigger(server.close)
    else:
        server.close()


def serve(settings: Settings, port: int | None = None, host: str = "0.0.0.0") -> None:  # noqa: S104
    """Serve until interrupted (Ctrl-C or SIGTERM ends the process)."""
    server = make_server(settings, port, host)
    log.info("web app listening", extra={"fields": {"host": host, "port": port or settings.web_port}})
    try:
        server.run()
    finally:
        server.close()
