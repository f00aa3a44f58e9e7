"""An agent's MCP tools: one connection per ``impl = "mcp"`` entry, merged into one catalog of exposed names."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from agent2389.config.agent import ToolSpec
from agent2389.config.mcp import MCP_IMPL
from agent2389.protocol.errors import ToolExecutionError
from workers.tools.base import ToolDescription
from workers.tools.process import Reply

if TYPE_CHECKING:
    from workers.tools.mcp.catalog import OfferedTool
    from workers.tools.mcp.connection import McpConnection

MAX_ERROR_CHARS = 10_000


def mcp_entries(specs: Mapping[str, ToolSpec]) -> dict[str, ToolSpec]:
    return {name: spec for name, spec in specs.items() if spec.impl == MCP_IMPL}


class McpToolset:
    def __init__(self, specs: Mapping[str, ToolSpec], secrets: list[str]) -> None:
        self._specs = mcp_entries(specs)
        self._secrets = secrets
        self._connections: dict[str, McpConnection] = {}

    def start(self) -> None:
        """Connect to every server; ToolExecutionError names the first that cannot be used."""
        if not self._specs:
            return
        # Here, not at import: the MCP SDK costs every worker ~0.3 s and tens of MB, most serve no MCP tool.
        from workers.tools.mcp.connection import McpConnection

        try:
            for entry, spec in self._specs.items():
                connection = McpConnection(entry, spec, self._secrets)
                connection.open()
                self._connections[entry] = connection
        except BaseException:
            self.close()
            raise

    def catalog(self) -> dict[str, OfferedTool]:
        """Every tool offered now (servers may change their lists while the worker runs)."""
        return {name: tool for connection in self._connections.values() for name, tool in connection.offered.items()}

    def descriptions(self) -> list[ToolDescription]:
        return [ToolDescription(name=name, description=tool.description, parameters=tool.parameters)
                for name, tool in self.catalog().items()]

    def call(self, tool: OfferedTool, parameters: dict[str, Any], timeout_s: float) -> Reply:
        """Reply as from a tool process; raises ToolTimeoutError or ToolExecutionError like one."""
        connection = self._connections.get(tool.entry)
        if connection is None:
            raise ToolExecutionError(f"MCP server {tool.entry!r} is not connected")
        from workers.tools.mcp.results import result_text

        result = connection.call(tool.mcp_name, parameters, timeout_s)
        if result.is_error:
            text = result_text(result, MAX_ERROR_CHARS) or "(no details)"
            # As for Python tools' errors: a server echoing its credentials must not hand them to the LLM.
            for secret in self._secrets:
                text = text.replace(secret, "[redacted]")
            return Reply(ok=False, error=f"the MCP tool reported an error: {text}")
        return Reply(ok=True, result=result_text(result))

    def spec(self, tool: OfferedTool) -> ToolSpec:
        return self._specs[tool.entry]

    def close(self) -> None:
        connections, self._connections = self._connections, {}
        for connection in connections.values():
            connection.close()
