"""``/dashboard``: one server-rendered page of workers, queues, agents, throughput and recent tasks.

The page polls ``/dashboard/panels`` every few seconds and swaps in the fresh HTML: all rendering
stays on the server (Jinja, escaped), the script only fetches. No build step. A task of the recent tasks
table opens ``/dashboard/tasks/<id>``: its timeline and, for a v2 workflow, its hops from agent to agent,
polled the same way from ``/dashboard/task-panel/<id>``. Everything shown comes
from Redis, written by processes that quote what agents, tasks and tools said, so every value is
operator-visible *text*: it goes through autoescaping as a whole string, never through ``tojson`` or
``|safe`` into markup or an attribute (``tojson`` does not escape ``"``).
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

import redis
from flask import Blueprint, Response, make_response, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from web import inspection
from web.auth import COOKIE, is_authorized, session_value, token_matches
from web.context import web_context
from web.health import evaluate, overall, redis_down

dashboard = Blueprint("dashboard", __name__, template_folder="templates", static_folder="static",
                      static_url_path="/dashboard/static")
RECENT_TASKS = 15
POLL_SECONDS = 3
SPARKS = "▁▂▃▄▅▆▇█"
MAX_TASK_ID_CHARS = 256


@dashboard.app_template_filter("ago")
def ago(timestamp: float | None) -> str:
    if not timestamp:
        return "never"
    seconds = max(0, int(time.time() - float(timestamp)))
    if seconds < 120:
        return f"{seconds} s ago"
    if seconds < 7200:
        return f"{seconds // 60} min ago"
    return f"{seconds // 3600} h ago"


@dashboard.app_template_filter("clock")
def clock(timestamp: float | None) -> str:
    return time.strftime("%H:%M:%S", time.localtime(float(timestamp))) if timestamp else "-"


@dashboard.app_template_filter("spark")
def spark(values: list[int]) -> str:
    top = max(values, default=0)
    if top == 0:
        return SPARKS[0] * len(values)
    return "".join(SPARKS[min(len(SPARKS) - 1, round(v / top * (len(SPARKS) - 1)))] for v in values)


@dashboard.app_template_filter("reasons")
def reasons(not_ready: dict[str, str]) -> str:
    """A worker's not-ready reasons as one line of plain text (escaped by the template like any text)."""
    return "; ".join(f"{agent}: {reason}" for agent, reason in sorted(not_ready.items()))


@dashboard.app_template_filter("path_segment")
def path_segment(value: str) -> str:
    """``value`` as one URL path segment: a ``/``, ``?`` or ``#`` in it cannot change which URL a link names."""
    return quote(value, safe="")


# The timeline fields worth a glance, in this order; the rest is in /api/tasks/<id>.
EVENT_DETAILS = ("to_agent", "strategy", "reason", "decision_ms", "steps", "response_bytes", "model", "tool",
                 "outcome", "duration_ms", "error_code", "message", "error")


@dashboard.app_template_filter("event_details")
def event_details(event: dict[str, Any]) -> str:
    """A timeline event's notable fields as one line of plain text (escaped by the template like any text)."""
    return ", ".join(f"{name} {event[name]}" for name in EVENT_DETAILS if event.get(name) not in (None, ""))


@dashboard.get("/dashboard")
def page() -> BaseResponse:
    token = web_context().settings.web_auth_token
    offered = request.args.get("token")
    if token and offered is not None:
        if not token_matches(offered, token):
            return _login(status=401, failed=True)
        response = redirect(url_for("dashboard.page"))
        response.set_cookie(COOKIE, session_value(token), httponly=True, samesite="Strict",
                            secure=request.is_secure, max_age=12 * 3600)
        return response
    if not is_authorized(request):
        return _login(status=401, failed=False)
    return make_response(render_template("dashboard.html", poll_seconds=POLL_SECONDS, **panels_data()))


@dashboard.get("/dashboard/panels")
def panels() -> Response | tuple[str, int]:
    if not is_authorized(request):
        return "unauthorized", 401
    response = make_response(render_template("panels.html", **panels_data()))
    response.headers["Cache-Control"] = "no-store"
    return response


@dashboard.get("/dashboard/tasks/<path:task_id>")
def task_page(task_id: str) -> Response:
    """One task on a page of its own: for a v2 workflow its hops from agent to agent (web/workflow.py)."""
    if not is_authorized(request):
        return _login(status=401, failed=False)
    data = task_data(task_id)
    response = make_response(render_template("task.html", poll_seconds=POLL_SECONDS, **data),
                             200 if data["task"] else 404)
    return response


@dashboard.get("/dashboard/task-panel/<path:task_id>")
def task_panel(task_id: str) -> Response | tuple[str, int]:
    if not is_authorized(request):
        return "unauthorized", 401
    data = task_data(task_id)
    response = make_response(render_template("workflow.html", **data), 200 if data["task"] else 404)
    response.headers["Cache-Control"] = "no-store"
    return response


def task_data(task_id: str) -> dict[str, Any]:
    context = web_context()
    now = time.time()
    if len(task_id) > MAX_TASK_ID_CHARS:
        return {"task_id": task_id[:MAX_TASK_ID_CHARS], "task": None, "error": "a task id this long is never recorded",
                "now": now}
    try:
        found = inspection.timeline(context.client, context.keys, task_id)
    except redis.RedisError as exc:
        return {"task_id": task_id, "task": None, "error": redis_down(exc, now)["redis"].message, "now": now}
    return {"task_id": task_id, "task": found, "error": None, "now": now}


def _login(status: int, failed: bool) -> Response:
    response = make_response(render_template("login.html", failed=failed), status)
    response.headers["WWW-Authenticate"] = 'Bearer realm="agent2389"'
    return response


def panels_data() -> dict[str, Any]:
    context = web_context()
    now = time.time()
    try:
        started = time.perf_counter()
        snapshot = context.snapshot()
        redis_ms = (time.perf_counter() - started) * 1000
        recent = inspection.tasks(context.client, context.keys, inspection.TaskQuery(limit=RECENT_TASKS))
    except redis.RedisError as exc:
        checks = redis_down(exc, now)
        return {"error": checks["redis"].message, "status": overall(checks), "now": now, "workers": [],
                "queues": [], "agents": [], "registry": [], "tasks": [],
                "bridge": None}
    checks = evaluate(snapshot, redis_ms)
    agents = inspection.agents(snapshot)
    return {
        "error": None,
        "now": now,
        "status": overall(checks),
        "checks": {name: check.to_json() for name, check in checks.items()},
        "bridge": snapshot.bridge,
        "workers": inspection.workers(snapshot),
        "queues": inspection.queues(snapshot),
        # Our agents' task numbers; every agent seen on the broker, ours and foreign, with what it advertises.
        "agents": [a for a in agents if a["llm"] is not None],
        "registry": [a for a in agents if a["last_seen"] is not None],
        "tasks": recent,
    }
