"""Configuration: agent files (``agent``: the agent.toml models; ``files``: loading and checking them;
``mcp``: MCP server entries) and the process-wide ``settings`` read from the environment."""
