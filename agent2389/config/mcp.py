"""The ``config`` table of an MCP tool entry (``impl = "mcp"``): how to reach one MCP server.

Two shapes: a stdio server the worker starts (``command``, ``args``, ``env``, ``cwd``) or a Streamable
HTTP server it contacts (``url``, ``headers_env``). Secrets never appear in the file: ``env`` and
``headers_env`` name environment variables whose values are read at run time. See docs/tools.md.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

MCP_IMPL = "mcp"
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


class McpServerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    command: str | None = Field(default=None, min_length=1)
    args: list[str] = Field(default_factory=list)
    env: list[str] = Field(default_factory=list)
    cwd: str | None = None
    url: str | None = None
    headers_env: dict[str, str] = Field(default_factory=dict)

    @classmethod
    def parse(cls, config: Mapping[str, Any]) -> McpServerConfig:
        """The config, or ValueError naming every bad key the way ``validate`` prints it."""
        try:
            return cls.model_validate(dict(config))
        except ValidationError as exc:
            raise ValueError("; ".join(_describe(error) for error in exc.errors())) from None

    @field_validator("env")
    @classmethod
    def _env_names(cls, names: list[str]) -> list[str]:
        bad = [name for name in names if not ENV_NAME.match(name)]
        if bad:
            raise ValueError(f"env lists environment variable names, not values; {bad[0]!r} is not a name")
        return names

    @field_validator("headers_env")
    @classmethod
    def _header_names(cls, headers: dict[str, str]) -> dict[str, str]:
        for header, env_name in headers.items():
            if not HEADER_NAME.match(header):
                raise ValueError(f"{header!r} is not an HTTP header name")
            if not ENV_NAME.match(env_name):
                raise ValueError(f"headers_env maps a header to an environment variable name; "
                                 f"{header} does not name one")
        return headers

    @field_validator("url")
    @classmethod
    def _url_is_http(cls, value: str | None) -> str | None:
        if value is None:
            return value
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("url must be an http:// or https:// URL of the server's MCP endpoint")
        if parts.username or parts.password:
            raise ValueError("url must not carry credentials; use headers_env")
        return value

    @model_validator(mode="after")
    def _one_transport(self) -> McpServerConfig:
        if (self.command is None) == (self.url is None):
            raise ValueError("give either command (a stdio server) or url (a Streamable HTTP server)")
        if self.url is not None and (self.args or self.env or self.cwd):
            raise ValueError("args, env and cwd are for stdio servers (command) only")
        if self.command is not None and self.headers_env:
            raise ValueError("headers_env is for HTTP servers (url) only")
        return self

    def env_names(self) -> list[str]:
        return [*self.env, *self.headers_env.values()]

    def describe(self) -> str:
        """Where the server is, for messages (no secrets: those are never in the config)."""
        return self.url if self.url is not None else " ".join([self.command or "", *self.args])


def _describe(error: Any) -> str:
    where = ".".join(str(part) for part in error["loc"])
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = f"unknown key (allowed: {', '.join(McpServerConfig.model_fields)})"
    return f"config.{where}: {message}" if where else f"config: {message}"
