"""One MCP server, as one worker process sees it: a client session kept open, restarted when it breaks.

A supervisor task on the MCP event loop (workers/tools/mcp/loop.py) connects, initializes and lists the
tools, then watches the session (a ping now and then, and any call that finds the connection closed).
When the session breaks, a stdio server is started again and an HTTP server contacted again, with
exponential backoff. Worker threads call tools through :meth:`McpConnection.call`, which waits a little
for a session being restored rather than failing at once.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx2
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.client._transport import TransportStreams
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp_types import (
    CONNECTION_CLOSED,
    REQUEST_TIMEOUT,
    CallToolResult,
    PaginatedRequestParams,
    Tool,
    ToolListChangedNotification,
)

from agent2389.config.agent import ToolSpec
from agent2389.config.mcp import McpServerConfig
from agent2389.protocol.errors import RetryableToolError, ToolExecutionError, ToolTimeoutError
from agent2389.protocol.sanitize import sanitize_error_message
from workers.tools.mcp import loop
from workers.tools.mcp.catalog import OfferedTool, build_catalog

log = logging.getLogger("agent2389.tools.mcp")
CONNECT_TIMEOUT_S = 30.0
WAIT_FOR_SESSION_S = 5.0
PING_INTERVAL_S = 10.0
PING_TIMEOUT_S = 10.0
RESTART_BASE_S = 0.5
RESTART_MAX_S = 30.0
CALL_GRACE_S = 5.0  # past the SDK's own timeout, in case its cancellation cannot be written


class McpConnection:
    def __init__(self, entry: str, spec: ToolSpec, secrets: list[str]) -> None:
        self.entry = entry
        self._config = McpServerConfig.parse(spec.config)
        self._allow = spec.allow
        self._secrets = secrets
        self.offered: dict[str, OfferedTool] = {}
        self._session: ClientSession | None = None
        self._connected = asyncio.Event()
        self._broken = asyncio.Event()
        self._first: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._supervisor: concurrent.futures.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._reason = "not connected yet"

    def open(self, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
        """Connect and list the tools; ToolExecutionError says why the server cannot be used."""
        self._check_environment()
        self._supervisor = loop.submit(self._supervise())
        try:
            self._first.result(timeout_s + CALL_GRACE_S)
        except concurrent.futures.TimeoutError:
            self.close()
            raise ToolExecutionError(f"MCP server {self.entry!r} did not start within {timeout_s:g} s") from None
        except ToolExecutionError:
            self.close()
            raise
        missing = sorted(set(self._allow or []) - {tool.mcp_name for tool in self.offered.values()})
        if missing:
            self.close()
            raise ToolExecutionError(f"MCP server {self.entry!r} offers no tool named {', '.join(missing)} "
                                     f"(listed in allow)")

    def call(self, tool: str, arguments: dict[str, Any], timeout_s: float) -> CallToolResult:
        """The server's result; ToolTimeoutError, or ToolExecutionError (retryable for transport failures)."""
        try:
            return loop.run(self._call(tool, arguments, timeout_s), timeout_s + WAIT_FOR_SESSION_S + CALL_GRACE_S)
        except TimeoutError:
            raise ToolTimeoutError(f"MCP tool {tool!r} did not finish within {timeout_s:g} s") from None

    def close(self) -> None:
        """End the session (a stdio server is stopped: stdin closed, then terminated, then killed)."""
        with contextlib.suppress(TimeoutError):
            loop.run(self._stop(), CONNECT_TIMEOUT_S)

    async def _stop(self) -> None:
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def _check_environment(self) -> None:
        missing = [name for name in self._config.env_names() if name not in os.environ]
        if missing:
            raise ToolExecutionError(f"MCP server {self.entry!r} needs environment variable "
                                     f"{', '.join(missing)}, which is not set")

    async def _call(self, tool: str, arguments: dict[str, Any], timeout_s: float) -> CallToolResult:
        session = await self._ready_session()
        try:
            return await session.call_tool(tool, arguments, read_timeout_seconds=timeout_s)
        except MCPError as exc:
            if exc.error.code == REQUEST_TIMEOUT:
                raise ToolTimeoutError(f"MCP tool {tool!r} did not finish within {timeout_s:g} s; "
                                       "the server was asked to cancel it") from None
            if exc.error.code == CONNECTION_CLOSED:
                self._lost(f"the connection closed during a call ({exc.error.message})")
                raise RetryableToolError(f"MCP server {self.entry!r} went away during the call; "
                                         "it is being restarted") from None
            raise ToolExecutionError(f"MCP server {self.entry!r} refused the call: "
                                     f"{self._clean(exc.error.message)}") from None
        except (anyio.ClosedResourceError, anyio.BrokenResourceError, httpx2.TransportError, OSError) as exc:
            self._lost(f"the connection failed ({type(exc).__name__})")
            raise RetryableToolError(f"MCP server {self.entry!r} could not be reached; retrying") from None
        except Exception as exc:  # a result the SDK cannot parse, a request for input we cannot give, ...
            raise ToolExecutionError(f"MCP server {self.entry!r} gave an answer that cannot be used "
                                     f"({type(exc).__name__})") from None

    async def _ready_session(self) -> ClientSession:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._connected.wait(), WAIT_FOR_SESSION_S)
        session = self._session
        if session is None or self._broken.is_set():
            raise RetryableToolError(f"MCP server {self.entry!r} is not available ({self._reason})")
        return session

    async def _supervise(self) -> None:
        self._task = asyncio.current_task()
        attempt = 0
        while True:
            try:
                await self._serve()
                attempt = 0
            except Exception as exc:
                self._reason = self._describe_failure(exc)
                if not self._first.done():
                    self._first.set_exception(ToolExecutionError(
                        f"MCP server {self.entry!r} ({self._config.describe()}) cannot be used: {self._reason}"))
                    return
            delay = min(RESTART_MAX_S, RESTART_BASE_S * 2**attempt)
            attempt += 1
            log.warning("MCP server %s is down (%s); restarting in %.1f s", self.entry, self._reason, delay)
            await asyncio.sleep(delay)

    async def _serve(self) -> None:
        async with contextlib.AsyncExitStack() as stack:
            read, write = await stack.enter_async_context(self._transport())
            session = await stack.enter_async_context(ClientSession(read, write, message_handler=self._on_message))
            with anyio.fail_after(CONNECT_TIMEOUT_S):
                await session.initialize()
                self.offered = build_catalog(self.entry, await _list_tools(session), self._allow)
            self._session = session
            self._broken.clear()
            self._connected.set()
            if not self._first.done():
                self._first.set_result(None)
            log.info("MCP server %s connected: %d tool(s) offered", self.entry, len(self.offered))
            try:
                await self._watch(session)
            finally:
                self._connected.clear()
                self._session = None

    def _transport(self) -> contextlib.AbstractAsyncContextManager[TransportStreams]:
        config = self._config
        if config.command is not None:
            env = {name: os.environ[name] for name in config.env if name in os.environ}
            return stdio_client(StdioServerParameters(command=config.command, args=config.args, env=env,
                                                      cwd=config.cwd))
        return self._http_transport()

    @contextlib.asynccontextmanager
    async def _http_transport(self) -> AsyncIterator[TransportStreams]:
        assert self._config.url is not None
        headers = {header: os.environ.get(name, "") for header, name in self._config.headers_env.items()}
        timeout = httpx2.Timeout(CONNECT_TIMEOUT_S, read=300.0)
        async with (httpx2.AsyncClient(headers=headers, timeout=timeout) as client,
                    streamable_http_client(self._config.url, http_client=client) as streams):
            yield streams

    async def _watch(self, session: ClientSession) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._broken.wait(), PING_INTERVAL_S)
                return
            try:
                with anyio.fail_after(PING_TIMEOUT_S):
                    await session.send_ping()
            except Exception as exc:
                self._reason = f"it did not answer a ping ({type(exc).__name__})"
                return

    async def _on_message(self, message: Any) -> None:
        if isinstance(message, ToolListChangedNotification) and self._session is not None:
            session = self._session
            # Not awaited here: this handler runs on the session's receive path.
            asyncio.get_running_loop().create_task(self._refresh(session))
        elif isinstance(message, Exception):
            log.warning("MCP server %s: transport error %s", self.entry, type(message).__name__)

    async def _refresh(self, session: ClientSession) -> None:
        try:
            self.offered = build_catalog(self.entry, await _list_tools(session), self._allow)
            log.info("MCP server %s changed its tools: %d offered now", self.entry, len(self.offered))
        except Exception as exc:
            log.warning("MCP server %s: could not list its changed tools (%s)", self.entry, type(exc).__name__)

    def _lost(self, reason: str) -> None:
        self._reason = reason
        self._broken.set()

    def _describe_failure(self, exc: BaseException) -> str:
        while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
            exc = exc.exceptions[0]
        if isinstance(exc, TimeoutError):
            return f"no answer to initialize within {CONNECT_TIMEOUT_S:g} s"
        if isinstance(exc, MCPError):
            return f"the server answered with an error ({self._clean(exc.error.message)})"
        return f"{type(exc).__name__}: {self._clean(str(exc))}"

    def _clean(self, text: str) -> str:
        return sanitize_error_message(text, self._secrets)


async def _list_tools(session: ClientSession) -> list[Tool]:
    tools: list[Tool] = []
    cursor: str | None = None
    while True:
        page = await session.list_tools(params=PaginatedRequestParams(cursor=cursor) if cursor else None)
        tools += page.tools
        cursor = page.next_cursor
        if not cursor:
            return tools
