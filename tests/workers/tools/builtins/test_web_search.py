"""web_search through its provider interface, with the Brave provider against a local fake of its API."""

from __future__ import annotations

import json
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest

from agent2389.protocol.errors import RetryableToolError, ToolExecutionError
from fakes.http_server import Answer, LocalServer, Seen, serving
from workers.tools.builtins.search_providers import SearchResult
from workers.tools.builtins.web_search import WebSearchTool

KEY = "brave-test-key-123456"


def brave(seen: Seen) -> Answer:
    if seen.headers.get("x-subscription-token") != KEY:
        return 401, {}, b'{"error": "unauthorized"}'
    query = parse_qs(urlsplit(seen.path).query)
    if query["q"] == ["busy"]:
        return 429, {}, b"{}"
    results = [{"title": f"Result {n} for {query['q'][0]}", "url": f"https://example.com/{n}",
                "description": f"snippet {n}"} for n in range(int(query["count"][0]))]
    return 200, {"content-type": "application/json"}, json.dumps({"web": {"results": results}}).encode()


@pytest.fixture
def fake_brave(monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalServer]:
    monkeypatch.setenv("BRAVE_SEARCH_API_KEY", KEY)
    with serving(brave) as server:
        yield server


def search_tool(server: LocalServer, **config: object) -> WebSearchTool:
    tool = WebSearchTool()
    tool.initialize({"endpoint": f"{server.url}/res/v1/web/search", **config})
    return tool


def test_results_come_back_as_titles_urls_and_snippets(fake_brave: LocalServer) -> None:
    results = search_tool(fake_brave).execute({"query": "mqtt qos", "count": 2})

    assert results == [
        {"title": "Result 0 for mqtt qos", "url": "https://example.com/0", "snippet": "snippet 0"},
        {"title": "Result 1 for mqtt qos", "url": "https://example.com/1", "snippet": "snippet 1"},
    ]


def test_the_count_never_exceeds_the_configured_maximum(fake_brave: LocalServer) -> None:
    assert len(search_tool(fake_brave, max_results=3).execute({"query": "anything", "count": 50})) == 3


def test_the_key_comes_from_the_environment_and_a_missing_one_fails_initialization(
    fake_brave: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BRAVE_SEARCH_API_KEY")

    with pytest.raises(ToolExecutionError, match="environment variable BRAVE_SEARCH_API_KEY is not set"):
        search_tool(fake_brave)


def test_a_rejected_key_is_not_retryable_and_rate_limiting_is(
    fake_brave: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(RetryableToolError, match="HTTP 429"):
        search_tool(fake_brave).execute({"query": "busy"})
    monkeypatch.setenv("BRAVE_SEARCH_API_KEY", "wrong-key-000000")
    with pytest.raises(ToolExecutionError, match="rejected the API key") as raised:
        search_tool(fake_brave).execute({"query": "anything"})
    assert not raised.value.retryable


def test_any_provider_behind_the_interface_can_serve_the_tool() -> None:
    class Canned:
        def search(self, query: str, count: int) -> list[SearchResult]:
            return [SearchResult(title=query, url="https://example.org", snippet="canned")] * count

    tool = WebSearchTool()
    tool.initialize({}, provider=Canned())

    assert tool.execute({"query": "q", "count": 2}) == [{"title": "q", "url": "https://example.org",
                                                         "snippet": "canned"}] * 2


def test_an_unknown_provider_is_a_clear_error() -> None:
    with pytest.raises(ToolExecutionError, match="unknown search provider 'altavista'; available: brave"):
        WebSearchTool().initialize({"provider": "altavista"})
