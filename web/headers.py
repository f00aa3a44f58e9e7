"""Response headers that keep the browser from running or framing anything the app did not ship.

The dashboard is one server-rendered page with one script file and one style sheet, so the policy can
be strict: scripts and styles only from this origin (no inline script, no inline handler, no ``eval``),
no plugins, no framing, no sniffing a JSON or text answer into HTML. Escaping in the templates is the
first defence against stored markup; this policy is the second, should a template ever get it wrong.
"""

from __future__ import annotations

from flask import Response

CONTENT_SECURITY_POLICY = "; ".join((
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self'",
    "connect-src 'self'",
    "form-action 'self'",
    "base-uri 'none'",
    "frame-ancestors 'none'",
))
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


def add_security_headers(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response
