"""A real MCP server for the tests, written with the mcp SDK: ``python server.py stdio`` or ``server.py http PORT``.

Its tools behave well, hang, fail, answer hugely, crash the server, or change the tool list. The hanging
tool writes ``cancelled`` into ``$MCP_TEST_MARKS/hang`` when the client cancels it; ``starts`` counts
server starts (one line each) so tests can see a restart.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import ImageContent, TextContent

server = MCPServer("agent2389-test", log_level="WARNING")
MARKS = Path(os.environ.get("MCP_TEST_MARKS", "."))


@server.tool()
def echo(text: str) -> str:
    """Repeat the text."""
    return f"echo: {text}"


@server.tool()
def secret_env() -> str:
    """Whether the variables named in the config reached the server (and others did not)."""
    return f"token={os.environ.get('MCP_TEST_TOKEN', '-')} other={os.environ.get('MCP_TEST_OTHER', '-')}"


@server.tool()
def authorization(ctx: Context) -> str:
    """The Authorization header of the HTTP request that carried this call."""
    return (ctx.headers or {}).get("authorization", "-")


@server.tool()
async def hang() -> str:
    """Never answers."""
    try:
        await anyio.sleep(3600)
    except anyio.get_cancelled_exc_class():
        (MARKS / "hang").write_text("cancelled")
        raise
    return "woke up"


@server.tool()
def fail() -> str:
    """Reports an error."""
    raise ToolError("the tool failed on purpose")


@server.tool()
def fail_with(message: str) -> str:
    """Reports an error with this message."""
    raise ToolError(message)


@server.tool()
def huge(chars: int) -> str:
    """A result of that many characters."""
    return "x" * chars


@server.tool()
def picture() -> list[TextContent | ImageContent]:
    """Text and an image."""
    return [TextContent(type="text", text="a red dot:"), ImageContent(type="image", data="AAAA" * 25,
                                                                      mime_type="image/png")]


@server.tool()
def crash() -> str:
    """Ends the server in the middle of the call."""
    os._exit(3)


@server.tool()
async def grow(ctx: Context) -> str:
    """Adds the tool ``late`` and tells the client that the tool list changed."""
    server.add_tool(lambda: "late tool here", name="late", description="Appeared later")
    await ctx.session.send_tool_list_changed()
    return "grown"


if __name__ == "__main__":
    with (MARKS / "starts").open("a") as starts:
        starts.write(f"{os.getpid()}\n")
    if sys.argv[1] == "http":
        server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[2]))
    else:
        server.run()
