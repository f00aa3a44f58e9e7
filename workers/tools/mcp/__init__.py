"""Tools from MCP servers (``impl = "mcp"``): each server's tools offered to the LLM as ``{entry}__{tool}``.

Unlike Python tools, MCP tools do not run in tool processes: the server is already a process of its own
(stdio) or a remote service (Streamable HTTP), so the worker holds one client session per server, shared
by all its threads, and a stuck call is abandoned with MCP's cancellation instead of a kill. See docs/tools.md.
"""
