"""http_request against real local servers: what it returns, and every way it refuses to be an SSRF."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from agent2389.protocol.errors import RetryableToolError, ToolExecutionError
from fakes.http_server import Answer, LocalServer, Seen, serving
from tests.workers.tools.sample_tools import agent_with_tools
from workers.tools.builtins.http_request import HttpRequestTool
from workers.tools.executor import ToolCall, ToolExecutor


def site(seen: Seen) -> Answer:
    if seen.path == "/hello":
        return 200, {"content-type": "text/plain"}, b"hello"
    if seen.path == "/big":
        return 200, {}, b"x" * 5000
    if seen.path.startswith("/go?"):
        return 302, {"location": seen.path.removeprefix("/go?")}, b""
    if seen.path == "/loop":
        return 302, {"location": "/loop"}, b""
    if seen.path == "/headers":
        return 200, {}, json.dumps({name.lower(): value for name, value in seen.headers.items()}).encode()
    echo = {"method": seen.method, "body": seen.body.decode(), "authorization": seen.headers.get("authorization")}
    return 200, {"content-type": "application/json"}, json.dumps(echo).encode()


@pytest.fixture
def server() -> Iterator[LocalServer]:
    with serving(site) as running:
        yield running


@pytest.fixture
def other_loopback_server() -> Iterator[LocalServer]:
    """On 127.0.0.2: allow-list this one alone and 127.0.0.1 stays forbidden."""
    with serving(site, host="127.0.0.2") as running:
        yield running


def tool(**config: Any) -> HttpRequestTool:
    made = HttpRequestTool()
    made.initialize(config)
    return made


def test_a_get_returns_status_headers_and_body(server: LocalServer) -> None:
    result = tool(allowed_networks=["127.0.0.1/32"]).execute({"url": f"{server.url}/hello"})

    assert result["status"] == 200
    assert result["body"] == "hello"
    assert result["headers"]["content-type"] == "text/plain"
    assert result["truncated"] is False


def test_method_headers_and_body_are_sent(server: LocalServer) -> None:
    result = tool(allowed_networks=["127.0.0.1"]).execute(
        {"url": f"{server.url}/echo", "method": "POST", "body": "payload", "headers": {"Authorization": "Bearer t"}}
    )

    assert json.loads(result["body"]) == {"method": "POST", "body": "payload", "authorization": "Bearer t"}


def test_a_large_body_is_cut_at_the_configured_size(server: LocalServer) -> None:
    result = tool(allowed_networks=["127.0.0.1/32"], max_response_bytes=100).execute({"url": f"{server.url}/big"})

    assert result["truncated"] is True
    assert result["body"] == "x" * 100


def test_loopback_is_refused_unless_allow_listed_and_nothing_is_sent(server: LocalServer) -> None:
    with pytest.raises(ToolExecutionError, match="a loopback address"):
        tool().execute({"url": f"{server.url}/hello"})

    assert server.seen == []


@pytest.mark.parametrize(("url", "kind"), [
    ("http://10.1.2.3/admin", "private"),
    ("http://169.254.169.254/latest/meta-data/", "link-local"),
    ("http://[::ffff:169.254.169.254]/latest/meta-data/", "link-local"),
    ("http://localhost:9/", "loopback"),
])
def test_private_and_metadata_addresses_are_refused(url: str, kind: str) -> None:
    with pytest.raises(ToolExecutionError, match=kind):
        tool().execute({"url": url})


def test_a_redirect_to_loopback_is_refused(other_loopback_server: LocalServer, server: LocalServer) -> None:
    allowed_only_there = tool(allowed_networks=["127.0.0.2/32"])

    with pytest.raises(ToolExecutionError, match=r"resolves to a loopback address") as refused:
        allowed_only_there.execute({"url": f"{other_loopback_server.url}/go?{server.url}/hello"})

    assert [seen.path for seen in other_loopback_server.seen] == [f"/go?{server.url}/hello"]
    assert server.seen == []
    assert "127.0.0.1" not in str(refused.value).replace(repr("127.0.0.1"), "")


def test_redirects_are_followed_and_credentials_stay_with_their_origin(
    other_loopback_server: LocalServer, server: LocalServer
) -> None:
    both = tool(allowed_networks=["127.0.0.0/8"])

    result = both.execute({"url": f"{other_loopback_server.url}/go?{server.url}/echo",
                           "headers": {"Authorization": "Bearer secret"}})

    assert result["status"] == 200 and result["url"] == f"{server.url}/echo"
    assert other_loopback_server.seen[0].headers["authorization"] == "Bearer secret"
    assert json.loads(result["body"])["authorization"] is None


def test_a_cross_origin_redirect_forwards_only_the_allow_listed_headers(
    other_loopback_server: LocalServer, server: LocalServer
) -> None:
    sent = {"Accept": "application/json", "Content-Type": "text/plain", "X-Api-Key": "k-123",
            "X-Auth-Token": "t-456", "Cookie": "session=1", "Proxy-Authorization": "Basic eA==", "X-Custom": "c"}

    result = tool(allowed_networks=["127.0.0.0/8"]).execute(
        {"url": f"{other_loopback_server.url}/go?{server.url}/headers", "headers": sent})

    first = {name.lower() for name in other_loopback_server.seen[0].headers}
    assert {name.lower() for name in sent} <= first, "the origin itself gets every header"
    forwarded = json.loads(result["body"])
    assert {"accept", "content-type", "user-agent"} <= set(forwarded)
    assert not {"x-api-key", "x-auth-token", "cookie", "proxy-authorization", "x-custom"} & set(forwarded)
    assert "k-123" not in json.dumps(forwarded) and "t-456" not in json.dumps(forwarded)


def test_a_same_origin_redirect_keeps_every_header(server: LocalServer) -> None:
    result = tool(allowed_networks=["127.0.0.1/32"]).execute(
        {"url": f"{server.url}/go?/headers", "headers": {"X-Api-Key": "k-123"}})
    assert json.loads(result["body"])["x-api-key"] == "k-123"


def test_a_redirect_loop_ends_with_an_error(server: LocalServer) -> None:
    with pytest.raises(ToolExecutionError, match="more than 3 redirects"):
        tool(allowed_networks=["127.0.0.1/32"], max_redirects=3).execute({"url": f"{server.url}/loop"})


@pytest.mark.parametrize(("parameters", "message"), [
    ({"url": "file:///etc/passwd"}, "must be absolute and start with http"),
    ({"url": "http://user:pw@example.com/"}, "credentials in the URL"),
    ({"url": "http://example.com/", "method": "TRACE"}, "method TRACE is not allowed"),
])
def test_unsupported_requests_are_refused(parameters: dict[str, Any], message: str) -> None:
    with pytest.raises(ToolExecutionError, match=message):
        tool().execute(parameters)


def test_a_refused_connection_is_a_retryable_failure() -> None:
    with pytest.raises(RetryableToolError, match="request failed"):
        tool(allowed_networks=["127.0.0.1/32"]).execute({"url": "http://127.0.0.1:9/"})


def test_the_allow_list_in_the_agent_file_reaches_the_tool_process(server: LocalServer) -> None:
    open_tool = {"impl": "builtin", "config": {"allowed_networks": ["127.0.0.1/32"]}}
    executors = [ToolExecutor(agent_with_tools({"http_request": spec})) for spec in (open_tool, "builtin")]
    try:
        allowed, guarded = (e.run(ToolCall("http_request", {"url": f"{server.url}/hello"})) for e in executors)
    finally:
        for executor in executors:
            executor.close()

    assert not allowed.is_error and '"body": "hello"' in allowed.content
    assert guarded.is_error and "loopback" in guarded.content
