"""The ``http_request`` builtin: one HTTP(S) request, redirects followed, behind the SSRF guard.

Config (all optional): ``allowed_networks`` (CIDRs the guard lets through, e.g. ``["10.0.0.0/8"]`` for an
internal API), ``max_response_bytes`` (1 MiB), ``timeout_s`` per network operation (20), ``max_redirects``
(5), ``methods`` (GET, HEAD, POST, PUT, PATCH, DELETE), ``user_agent``.
"""

from __future__ import annotations

import http.client
import socket
import ssl
from collections.abc import Mapping
from typing import Any
from urllib.parse import urljoin, urlsplit

from agent2389.protocol.errors import RetryableToolError, ToolExecutionError
from workers.tools.builtins.netguard import NetGuard, parse_networks

DEFAULT_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
REDIRECTS = frozenset({301, 302, 303, 307, 308})
# What still goes along when a redirect leaves the origin: anything else (Authorization, Cookie, X-Api-Key,
# any custom credential header the model was told to send) stays with the origin it was meant for.
CROSS_ORIGIN_HEADERS = frozenset({"accept", "accept-language", "content-type", "content-language", "user-agent"})
REPORTED_HEADERS = ("content-type", "content-length", "last-modified", "etag", "location", "retry-after")


class HttpRequestTool:
    def __init__(self) -> None:
        self._guard = NetGuard()
        self._max_bytes = 1024 * 1024
        self._timeout_s = 20.0
        self._max_redirects = 5
        self._methods: tuple[str, ...] = DEFAULT_METHODS
        self._user_agent = "agent2389-http-request/1"
        self._tls = ssl.create_default_context()

    def describe(self) -> dict[str, Any]:
        return {
            "name": "http_request",
            "description": "Make an HTTP or HTTPS request to a public address and return status, headers and body "
                           f"(the body is cut after {self._max_bytes} bytes).",
            "parameters": {
                "type": "object",
                "properties": {
                    "url": {"type": "string", "description": "Absolute http:// or https:// URL"},
                    "method": {"type": "string", "enum": list(self._methods), "default": "GET"},
                    "headers": {"type": "object", "additionalProperties": {"type": "string"}},
                    "body": {"type": "string", "description": "Request body, sent as UTF-8"},
                },
                "required": ["url"],
                "additionalProperties": False,
            },
        }

    def initialize(self, config: Mapping[str, Any]) -> None:
        self._guard = NetGuard(tuple(parse_networks(config.get("allowed_networks", []))))
        self._max_bytes = int(config.get("max_response_bytes", self._max_bytes))
        self._timeout_s = float(config.get("timeout_s", self._timeout_s))
        self._max_redirects = int(config.get("max_redirects", self._max_redirects))
        self._methods = tuple(str(m).upper() for m in config.get("methods", self._methods))
        self._user_agent = str(config.get("user_agent", self._user_agent))

    def execute(self, parameters: dict[str, Any]) -> dict[str, Any]:
        url = str(parameters["url"])
        method = str(parameters.get("method", "GET")).upper()
        if method not in self._methods:
            raise ToolExecutionError(f"method {method} is not allowed; use one of {', '.join(self._methods)}")
        headers = {"User-Agent": self._user_agent, **dict(parameters.get("headers") or {})}
        body: bytes | None = parameters["body"].encode("utf-8") if "body" in parameters else None
        for _ in range(self._max_redirects + 1):
            status, reason, response_headers, data = self._send(method, url, headers, body)
            location = response_headers.get("location")
            if status not in REDIRECTS or not location:
                return self._result(url, status, reason, response_headers, data)
            next_url = urljoin(url, location)
            if _origin(next_url) != _origin(url):
                headers = {k: v for k, v in headers.items() if k.lower() in CROSS_ORIGIN_HEADERS}
            if status in (301, 302, 303) and method != "HEAD":
                method, body = "GET", None
            url = next_url
        raise ToolExecutionError(f"more than {self._max_redirects} redirects")

    def _send(
        self, method: str, url: str, headers: dict[str, str], body: bytes | None
    ) -> tuple[int, str, dict[str, str], bytes]:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ToolExecutionError("the URL must be absolute and start with http:// or https://")
        if parts.username or parts.password:
            raise ToolExecutionError("credentials in the URL are not supported; send an Authorization header")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            raise ToolExecutionError("the URL has an invalid port") from None
        address = self._guard.checked_address(parts.hostname, port)
        connection = _connection(parts.scheme, parts.hostname, port, address, self._timeout_s, self._tls)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        try:
            connection.request(method, target, body=body, headers=headers)
            response = connection.getresponse()
            data = response.read(self._max_bytes + 1)
            return response.status, response.reason, {k.lower(): v for k, v in response.getheaders()}, data
        except ssl.SSLError as exc:
            raise ToolExecutionError(f"TLS failed: {exc.reason or type(exc).__name__}") from None
        except (OSError, http.client.HTTPException) as exc:
            raise RetryableToolError(f"request failed: {type(exc).__name__}") from None
        except ValueError as exc:  # http.client refuses header names or values with line breaks
            raise ToolExecutionError(f"invalid request: {exc}") from None
        finally:
            connection.close()

    def _result(self, url: str, status: int, reason: str, headers: dict[str, str], data: bytes) -> dict[str, Any]:
        truncated = len(data) > self._max_bytes
        return {
            "url": url,
            "status": status,
            "reason": reason,
            "headers": {name: headers[name] for name in REPORTED_HEADERS if name in headers},
            "body": data[: self._max_bytes].decode("utf-8", "replace"),
            "truncated": truncated,
        }


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to the address the guard checked, whatever the name resolves to by now."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, address: str, timeout: float, tls: ssl.SSLContext) -> None:
        super().__init__(host, port, timeout=timeout, context=tls)
        self._address = address
        self._tls = tls

    def connect(self) -> None:
        raw = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._tls.wrap_socket(raw, server_hostname=self.host)  # certificate checked against the name


def _connection(
    scheme: str, host: str, port: int, address: str, timeout: float, tls: ssl.SSLContext
) -> http.client.HTTPConnection:
    if scheme == "https":
        return _PinnedHTTPSConnection(host, port, address, timeout, tls)
    return _PinnedHTTPConnection(host, port, address, timeout)


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme, (parts.hostname or "").lower(), parts.port
