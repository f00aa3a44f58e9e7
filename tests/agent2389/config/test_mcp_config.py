"""`agent2389 validate` on MCP tool entries: the two server shapes, and every mistake named."""

from __future__ import annotations

from pathlib import Path

from agent2389.config.files import inspect_config


def problems(tmp_path: Path, tools: str, environ: dict[str, str] | None = None) -> list[str]:
    (tmp_path / "a.toml").write_text(f'[agent]\nid = "a"\n[llm]\nprovider = "echo"\n{tools}')
    report = inspect_config(tmp_path, environ=environ or {})
    return [str(problem).split(": ", 1)[1] for problem in [*report.errors, *report.warnings]]


def test_a_stdio_server_and_an_http_server_are_valid_and_their_secrets_are_named(tmp_path: Path) -> None:
    found = problems(tmp_path, """
[tools.git]
impl = "mcp"
config = { command = "uvx", args = ["mcp-server-git"], env = ["GIT_TOKEN"] }
allow = ["git_log"]
timeout_s = 10
retries = 1
[tools.crm]
impl = "mcp"
config = { url = "https://crm.example/mcp", headers_env = { Authorization = "CRM_TOKEN" } }
""")

    assert found == ["environment variable GIT_TOKEN is not set (needed at run time)",
                     "environment variable CRM_TOKEN is not set (needed at run time)"]


def test_every_mistake_in_an_mcp_entry_is_reported(tmp_path: Path) -> None:
    found = problems(tmp_path, """
[tools.both]
impl = "mcp"
config = { command = "x", url = "http://127.0.0.1:1/mcp" }
[tools.neither]
impl = "mcp"
[tools.typo]
impl = "mcp"
config = { comand = "x", url = "ftp://127.0.0.1/" }
[tools.secret]
impl = "mcp"
config = { command = "x", env = ["TOKEN=abc"] }
[tools.creds]
impl = "mcp"
config = { url = "http://user:pw@127.0.0.1/mcp" }
[tools.builtin_allow]
impl = "builtin"
allow = ["x"]
""")

    assert found == [
        "tools.both: config: give either command (a stdio server) or url (a Streamable HTTP server)",
        "tools.neither: config: give either command (a stdio server) or url (a Streamable HTTP server)",
        "tools.typo: config.url: url must be an http:// or https:// URL of the server's MCP endpoint; "
        "config.comand: unknown key (allowed: command, args, env, cwd, url, headers_env)",
        "tools.secret: config.env: env lists environment variable names, not values; "
        "'TOKEN=abc' is not a name",
        "tools.creds: config.url: url must not carry credentials; use headers_env",
        "tools.builtin_allow: allow is for MCP tools (impl = \"mcp\") only",
    ]
