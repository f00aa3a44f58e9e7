"""The bearer token that guards what reveals task content, when ``AGENT2389_WEB_AUTH_TOKEN`` is set.

Scripts send ``Authorization: Bearer <token>``. A browser opens ``/dashboard?token=<token>`` once:
it gets an HttpOnly cookie holding a keyed hash of the token (never the token) and is redirected to
the bare URL, so the token does not stay in the address bar or the history.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from flask import Request, jsonify, request

from web.context import web_context

COOKIE = "agent2389_session"
F = TypeVar("F", bound=Callable[..., Any])


def _token() -> str | None:
    return web_context().settings.web_auth_token or None


def session_value(token: str) -> str:
    return hmac.new(token.encode(), b"agent2389 dashboard session", hashlib.sha256).hexdigest()


def token_matches(candidate: str, token: str) -> bool:
    return hmac.compare_digest(candidate.encode(), token.encode())


def is_authorized(req: Request) -> bool:
    token = _token()
    if token is None:
        return True
    scheme, _, value = req.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token_matches(value.strip(), token):
        return True
    cookie = req.cookies.get(COOKIE)
    return cookie is not None and token_matches(cookie, session_value(token))


def require_token(view: F) -> F:
    """401 with a ``WWW-Authenticate`` challenge unless the request carries the token."""

    @wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        if not is_authorized(request):
            response = jsonify(error="unauthorized", message="send Authorization: Bearer <AGENT2389_WEB_AUTH_TOKEN>")
            response.status_code = 401
            response.headers["WWW-Authenticate"] = 'Bearer realm="agent2389"'
            return response
        return view(*args, **kwargs)

    return cast(F, guarded)
