"""The test MCP server (server.py) as a stdio command or as a Streamable HTTP server on 127.0.0.1."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

SERVER = Path(__file__).with_name("server.py")
READY_TIMEOUT_S = 20.0


@pytest.fixture
def marks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where the server leaves its marks (its starts, a cancelled call)."""
    monkeypatch.setenv("MCP_TEST_MARKS", str(tmp_path))
    return tmp_path


def stdio_entry(**overrides: Any) -> dict[str, Any]:
    config = {"command": sys.executable, "args": [str(SERVER), "stdio"], "env": ["MCP_TEST_MARKS"]}
    return {"impl": "mcp", "config": config, **overrides}


@dataclass
class HttpServer:
    marks: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    def entry(self, **overrides: Any) -> dict[str, Any]:
        return {"impl": "mcp", "config": {"url": self.url}, **overrides}

    def start(self) -> None:
        self.process = subprocess.Popen([sys.executable, str(SERVER), "http", str(self.port)])
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the test MCP server exited with {self.process.returncode}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)  # waiting for uvicorn to bind; there is no event to wait on
        raise RuntimeError("the test MCP server did not start listening")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
        if self.process is not None:
            self.process.wait()


@pytest.fixture
def http_server(marks: Path) -> Iterator[HttpServer]:
    """An HTTP MCP server on a free loopback port, not started yet (``start()`` it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = HttpServer(marks, port)
    yield server
    server.stop()


@pytest.fixture(params=["stdio", "http"])
def server_entry(request: pytest.FixtureRequest, marks: Path) -> Callable[..., dict[str, Any]]:
    """A tool entry for the test server, once over stdio and once over Streamable HTTP."""
    if request.param == "stdio":
        return stdio_entry
    server: HttpServer = request.getfixturevalue("http_server")
    server.start()
    return server.entry
