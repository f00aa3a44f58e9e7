"""The ``web_search`` builtin: a query in, a short list of titles, URLs and snippets out.

Config: ``provider`` (``brave``), ``api_key_env``, ``endpoint``, ``max_results`` (10), ``timeout_s``;
see :mod:`search_providers`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agent2389.protocol.errors import ToolExecutionError
from workers.tools.builtins.search_providers import SearchProvider, SearchResult, make_provider

MAX_QUERY_CHARS = 400


class WebSearchTool:
    def __init__(self) -> None:
        self._provider: SearchProvider | None = None
        self._max_results = 10

    def describe(self) -> dict[str, Any]:
        return {
            "name": "web_search",
            "description": "Search the web; returns titles, URLs and snippets of the best matches.",
            "parameters": {
                "type": "object",
                "properties": {
                    "query": {"type": "string", "minLength": 1, "maxLength": MAX_QUERY_CHARS},
                    "count": {"type": "integer", "minimum": 1, "maximum": self._max_results},
                },
                "required": ["query"],
                "additionalProperties": False,
            },
        }

    def initialize(self, config: Mapping[str, Any], provider: SearchProvider | None = None) -> None:
        self._max_results = int(config.get("max_results", self._max_results))
        if self._max_results < 1:
            raise ToolExecutionError("config.max_results must be at least 1")
        self._provider = provider or make_provider(config)

    def execute(self, parameters: dict[str, Any]) -> list[SearchResult]:
        assert self._provider is not None, "initialize() was not called"
        count = min(int(parameters.get("count", self._max_results)), self._max_results)
        return self._provider.search(str(parameters["query"]), count)
