"""The fake's prompt cache: what a request marked with ``cache_control`` costs, the way the API counts it.

The cached prefix is every tool and the system prompt up to the last marked block (tools come first).
The first request with a prefix writes it (``cache_creation_input_tokens``), later ones read it
(``cache_read_input_tokens``); ``input_tokens`` counts only what is not cached. A token is four
characters of JSON here, and unlike the real API there is no minimum length, so short test prompts cache.
"""

from __future__ import annotations

import json
import threading
from typing import Any


def tokens(value: Any) -> int:
    return max(1, len(json.dumps(value)) // 4) if value else 0


def cached_prefix(request: dict[str, Any]) -> list[Any]:
    """The blocks up to and including the last one carrying ``cache_control`` (empty when none does)."""
    system = request.get("system", [])
    blocks = [*request.get("tools", []), *(system if isinstance(system, list) else [{"text": system}])]
    marked = [index for index, block in enumerate(blocks) if isinstance(block, dict) and "cache_control" in block]
    return blocks[: marked[-1] + 1] if marked else []


class PromptCache:
    def __init__(self) -> None:
        self._prefixes: set[str] = set()
        self._lock = threading.Lock()

    def usage(self, request: dict[str, Any], output_tokens: int) -> dict[str, int]:
        prefix = cached_prefix(request)
        everything = [*request.get("tools", []), request.get("system", ""), request.get("messages", [])]
        uncached = max(1, tokens(everything) - tokens(prefix))
        usage = {"input_tokens": uncached, "output_tokens": output_tokens,
                 "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
        if prefix:
            fingerprint = json.dumps([request.get("model"), prefix], sort_keys=True)
            with self._lock:
                hit = fingerprint in self._prefixes
                self._prefixes.add(fingerprint)
            usage["cache_read_input_tokens" if hit else "cache_creation_input_tokens"] = tokens(prefix)
        return usage
