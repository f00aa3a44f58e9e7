"""The names MCP tools are offered under: stable, distinct, and valid for every provider."""

from __future__ import annotations

from mcp_types import Tool

from workers.tools.mcp.catalog import PROVIDER_NAME, build_catalog, exposed_name


def test_a_valid_name_is_entry__tool() -> None:
    assert exposed_name("git", "git_log") == "git__git_log"


def test_names_the_providers_would_refuse_are_made_valid_distinct_and_stable() -> None:
    dotted, slashed = exposed_name("fs", "read.file"), exposed_name("fs", "read/file")
    long = exposed_name("server", "a" * 80)

    assert all(PROVIDER_NAME.match(name) for name in (dotted, slashed, long))
    assert dotted.startswith("fs__read_file_") and dotted != slashed
    assert len(long) == 64 and long == exposed_name("server", "a" * 80)


def test_the_allow_list_and_invalid_schemas_decide_what_is_offered() -> None:
    tools = [Tool(name="ok", description="fine", input_schema={"type": "object"}),
             Tool(name="hidden", input_schema={"type": "object"}),
             Tool(name="broken", input_schema={"type": "object", "properties": {"x": {"type": 5}}})]

    offered = build_catalog("s", tools, allow=["ok", "broken"])

    assert list(offered) == ["s__ok"]
    assert (offered["s__ok"].mcp_name, offered["s__ok"].description) == ("ok", "fine")
