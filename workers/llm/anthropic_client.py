"""The Anthropic SDK client as agent2389 uses it, and the safe text of every error it raises.

Retry policy, in one place: the SDK retries 408, 409, 429, 5xx (529 included) and connection errors
``[llm] max_retries`` times with exponential backoff and jitter, honouring ``retry-after``; it never
retries 400, 401, 403 or 404. Celery does not retry on top. A server asking us to wait longer than
``MAX_RETRY_AFTER_S`` gets no retry at all: parking a worker thread that long is worse than failing.
"""

from __future__ import annotations

import os

import anthropic
import httpx2

from agent2389.config import LlmSection
from agent2389.errors import LLMError

MAX_RETRY_AFTER_S = 60.0
CONNECT_TIMEOUT_S = 5.0


def api_key(llm: LlmSection) -> str:
    if not llm.api_key_env:
        raise LLMError("[llm] api_key_env must name the environment variable that holds the API key")
    key = os.environ.get(llm.api_key_env, "")
    if not key:
        raise LLMError(f"environment variable {llm.api_key_env} is not set; it must hold the API key")
    return key


def make_client(llm: LlmSection) -> anthropic.Anthropic:
    """A thread-safe client; ``base_url`` from config, else ANTHROPIC_BASE_URL, else Anthropic's API."""
    http_client = anthropic.DefaultHttpxClient(event_hooks={"response": [_refuse_long_retry_after]})
    return anthropic.Anthropic(
        api_key=api_key(llm),
        base_url=llm.base_url,
        timeout=httpx2.Timeout(llm.timeout_s, connect=min(CONNECT_TIMEOUT_S, llm.timeout_s)),
        max_retries=llm.max_retries,
        http_client=http_client,
    )


def _refuse_long_retry_after(response: httpx2.Response) -> None:
    wait = _retry_after_s(response.headers)
    if wait is not None and wait > MAX_RETRY_AFTER_S:
        response.headers["x-should-retry"] = "false"  # the SDK's documented switch for this


def _retry_after_s(headers: httpx2.Headers) -> float | None:
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is not None:
            try:
                return float(value) * scale
            except ValueError:
                return None  # an HTTP date: the SDK computes it; dates are rare enough to accept
    return None


def llm_error(exc: Exception, llm: LlmSection) -> LLMError:
    """A short message that names the problem and the fix, never the key, the URL or the response body."""
    if isinstance(exc, LLMError):
        return exc
    if isinstance(exc, anthropic.APITimeoutError):
        return LLMError(f"the LLM request timed out ({llm.timeout_s:g} s per attempt)")
    if isinstance(exc, anthropic.APIConnectionError):
        return LLMError("could not connect to the LLM provider")
    if isinstance(exc, anthropic.APIStatusError):
        return LLMError(_status_message(exc.status_code, llm))
    if isinstance(exc, anthropic.APIResponseValidationError):
        return LLMError("the LLM provider sent a response this agent cannot read")
    return LLMError(f"the LLM call failed ({type(exc).__name__})")


def _status_message(status: int, llm: LlmSection) -> str:
    if status == 401:
        return f"the LLM provider rejected the API key (HTTP 401); check {llm.api_key_env}"
    if status == 403:
        return "the API key may not use this model or endpoint (HTTP 403)"
    if status == 404:
        return f"the LLM provider does not know model {llm.model!r} or the endpoint (HTTP 404)"
    if status == 429:
        return "the LLM provider is rate-limiting this agent (HTTP 429)"
    if status == 413:
        return "the request is too large for the LLM provider (HTTP 413)"
    if status == 529:
        return "the LLM provider is overloaded (HTTP 529)"
    if status >= 500:
        return f"the LLM provider failed (HTTP {status})"
    return f"the LLM provider refused the request (HTTP {status})"
