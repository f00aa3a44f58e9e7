"""``/api/...``: the inspection endpoints, JSON, behind the bearer token when one is set."""

from __future__ import annotations

import time
from typing import Any

import redis
from flask import Blueprint, Response, jsonify, request

from agent2389.state.timeline import LIFECYCLE
from web import inspection
from web.auth import require_token
from web.context import web_context

api = Blueprint("api", __name__, url_prefix="/api")
MAX_ID_CHARS = 256


class InvalidQueryError(ValueError):
    pass


@api.errorhandler(redis.RedisError)
def redis_unavailable(error: redis.RedisError) -> tuple[Response, int]:
    return jsonify(error="redis_unavailable", message=f"Redis did not answer ({type(error).__name__})"), 503


@api.errorhandler(InvalidQueryError)
def bad_request(error: InvalidQueryError) -> tuple[Response, int]:
    return jsonify(error="bad_request", message=str(error)), 400


def _stamped(**body: Any) -> Response:
    return jsonify(timestamp=int(time.time()), **body)


@api.get("/workers")
@require_token
def workers() -> Response:
    rows = inspection.workers(web_context().snapshot())
    return _stamped(workers=rows, online=sum(1 for w in rows if w["online"]))


@api.get("/queues")
@require_token
def queues() -> Response:
    return _stamped(queues=inspection.queues(web_context().snapshot()))


@api.get("/agents")
@require_token
def agents() -> Response:
    return _stamped(agents=inspection.agents(web_context().snapshot()))


@api.get("/tasks")
@require_token
def tasks() -> Response:
    query = parse_task_query(request.args.get("agent"), request.args.get("state"), request.args.get("limit"))
    context = web_context()
    return _stamped(tasks=inspection.tasks(context.client, context.keys, query))


@api.get("/tasks/<path:task_id>")
@require_token
def task(task_id: str) -> tuple[Response, int]:
    if len(task_id) > MAX_ID_CHARS:
        raise InvalidQueryError(f"a task id has at most {MAX_ID_CHARS} characters")
    context = web_context()
    found = inspection.timeline(context.client, context.keys, task_id)
    if found is None:
        return jsonify(error="not_found", message="no task with this id in the recent history"), 404
    return jsonify(found), 200


def parse_task_query(agent: str | None, state: str | None, limit: str | None) -> inspection.TaskQuery:
    if state and state not in inspection.STATES:
        raise InvalidQueryError(f"state must be one of {', '.join(LIFECYCLE)}")
    if agent is not None and len(agent) > MAX_ID_CHARS:
        raise InvalidQueryError(f"an agent id has at most {MAX_ID_CHARS} characters")
    try:
        count = int(limit) if limit else 50
    except ValueError:
        raise InvalidQueryError("limit must be a whole number") from None
    if not 1 <= count <= inspection.MAX_LIMIT:
        raise InvalidQueryError(f"limit must be between 1 and {inspection.MAX_LIMIT}")
    return inspection.TaskQuery(agent=agent or None, state=state or None, limit=count)
