"""``agent2389 validate --connect``: start or contact every MCP server of the agents, and list its tools."""

from __future__ import annotations

from collections.abc import Iterable

from agent2389.config.agent import AgentConfig
from agent2389.protocol.errors import ToolExecutionError
from agent2389.protocol.sanitize import environment_secrets
from workers.tools.mcp.connection import McpConnection
from workers.tools.mcp.toolset import mcp_entries


def probe_servers(agents: Iterable[AgentConfig]) -> tuple[list[str], list[str]]:
    """(lines about servers that work, lines about servers that do not), one per MCP tool entry."""
    good: list[str] = []
    bad: list[str] = []
    for agent in agents:
        secrets = environment_secrets(agent.referenced_env_vars())
        for entry, spec in mcp_entries(agent.tools).items():
            connection = McpConnection(entry, spec, secrets)
            try:
                connection.open()
            except ToolExecutionError as exc:
                bad.append(f"{agent.id}: {exc}")
                continue
            tools = ", ".join(sorted(connection.offered)) or "no tools"
            good.append(f"{agent.id}: MCP server {entry!r} offers {tools}")
            connection.close()
    return good, bad
