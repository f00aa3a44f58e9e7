"""Web search behind one small interface, so ``web_search`` can use any provider (and a fake in tests).

Brave Search is the provider built in: set ``BRAVE_SEARCH_API_KEY`` (or name another variable with
``api_key_env``). ``endpoint`` points it elsewhere, e.g. at a compatible proxy or a test server.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any, Protocol, TypedDict

from agent2389.protocol.errors import RetryableToolError, ToolExecutionError

BRAVE_ENDPOINT = "https://api.search.brave.com/res/v1/web/search"
MAX_RESPONSE_BYTES = 2 * 1024 * 1024


class SearchResult(TypedDict):
    title: str
    url: str
    snippet: str


class SearchProvider(Protocol):
    def search(self, query: str, count: int) -> list[SearchResult]: ...


class BraveSearch:
    def __init__(self, config: Mapping[str, Any]) -> None:
        key_env = str(config.get("api_key_env", "BRAVE_SEARCH_API_KEY"))
        key = os.environ.get(key_env, "")
        if not key:
            raise ToolExecutionError(f"environment variable {key_env} is not set (the search provider's API key)")
        self._key = key
        self._endpoint = str(config.get("endpoint", BRAVE_ENDPOINT))
        if urllib.parse.urlsplit(self._endpoint).scheme not in ("http", "https"):
            raise ToolExecutionError("config.endpoint must be an http:// or https:// URL")
        self._timeout_s = float(config.get("timeout_s", 15.0))

    def search(self, query: str, count: int) -> list[SearchResult]:
        url = f"{self._endpoint}?{urllib.parse.urlencode({'q': query, 'count': count})}"
        request = urllib.request.Request(  # noqa: S310 (the operator's endpoint, not the LLM's)
            url, headers={"Accept": "application/json", "X-Subscription-Token": self._key}
        )
        try:
            with urllib.request.urlopen(request, timeout=self._timeout_s) as response:  # noqa: S310
                payload = json.loads(response.read(MAX_RESPONSE_BYTES))
        except urllib.error.HTTPError as exc:
            exc.close()
            raise _status_error(exc.code) from None
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            raise RetryableToolError(f"the search provider could not be reached ({type(exc).__name__})") from None
        except ValueError:
            raise ToolExecutionError("the search provider sent a response that is not JSON") from None
        results = (payload.get("web") or {}).get("results") or [] if isinstance(payload, dict) else []
        return [
            SearchResult(title=str(item.get("title", "")), url=str(item.get("url", "")),
                         snippet=str(item.get("description", "")))
            for item in results[:count]
            if isinstance(item, dict)
        ]


def _status_error(status: int) -> ToolExecutionError:
    if status in (401, 403):
        return ToolExecutionError(f"the search provider rejected the API key (HTTP {status})")
    if status == 429 or status >= 500:
        return RetryableToolError(f"the search provider is unavailable or rate-limiting (HTTP {status})")
    return ToolExecutionError(f"the search provider refused the query (HTTP {status})")


PROVIDERS: dict[str, type[BraveSearch]] = {"brave": BraveSearch}


def make_provider(config: Mapping[str, Any]) -> SearchProvider:
    name = str(config.get("provider", "brave"))
    if name not in PROVIDERS:
        raise ToolExecutionError(f"unknown search provider {name!r}; available: {', '.join(sorted(PROVIDERS))}")
    return PROVIDERS[name](config)
