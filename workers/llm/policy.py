"""The one retry and time-out policy of the SDK-based providers, and the words for what went wrong.

Both SDKs (``anthropic``, ``openai``) retry 408, 409, 429, 5xx and connection errors ``[llm] max_retries``
times with exponential backoff and jitter, honouring ``retry-after``, and never 400, 401, 403 or 404.
Celery does not retry on top. A server asking us to wait longer than ``MAX_RETRY_AFTER_S`` gets no
retry at all: parking a worker thread that long is worse than failing the task.
"""

from __future__ import annotations

import functools
import os
import ssl

import httpx2

from agent2389.config.agent import LlmSection
from agent2389.protocol.errors import LLMError

MAX_RETRY_AFTER_S = 60.0
CONNECT_TIMEOUT_S = 5.0
DEADLINE_SLACK_S = 30.0
# Both SDKs keep at most 100 idle connections of their 1,000: a worker running more calls at once than
# that opened (and, on the real APIs, TLS-handshook) a new connection for most of them, every time.
CONNECTION_LIMITS = httpx2.Limits(max_connections=1000, max_keepalive_connections=1000)


@functools.cache
def ssl_context() -> ssl.SSLContext:
    """One TLS context (with the system's CA certificates loaded) for every client of this process: a
    worker spreads its calls over many clients (workers/llm/call_loop.py), and each would load its own."""
    return httpx2.create_ssl_context()


def api_key(llm: LlmSection) -> str:
    if not llm.api_key_env:
        raise LLMError("[llm] api_key_env must name the environment variable that holds the API key")
    key = os.environ.get(llm.api_key_env, "")
    if not key:
        raise LLMError(f"environment variable {llm.api_key_env} is not set; it must hold the API key")
    return key


def request_timeout(llm: LlmSection) -> httpx2.Timeout:
    """``timeout_s`` for every wait of one attempt, connecting at most ``CONNECT_TIMEOUT_S``."""
    return httpx2.Timeout(llm.timeout_s, connect=min(CONNECT_TIMEOUT_S, llm.timeout_s))


def call_deadline_s(llm: LlmSection) -> float:
    """How long one call may take with all its attempts, their waits and the longest ``retry-after`` we
    accept between them: a bound for the caller, past every time-out the SDK itself enforces."""
    attempts = llm.max_retries + 1
    return attempts * (llm.timeout_s + CONNECT_TIMEOUT_S) + llm.max_retries * MAX_RETRY_AFTER_S + DEADLINE_SLACK_S


def refuse_long_retry_after(response: httpx2.Response) -> None:
    """An httpx response hook: ``x-should-retry: false`` is both SDKs' documented switch for this."""
    wait = _retry_after_s(response.headers)
    if wait is not None and wait > MAX_RETRY_AFTER_S:
        response.headers["x-should-retry"] = "false"


def retry_after_s(headers: httpx2.Headers) -> float | None:
    """The wait a response asks for (``retry-after-ms`` or ``retry-after`` in seconds), if it says."""
    return _retry_after_s(headers)


def _retry_after_s(headers: httpx2.Headers) -> float | None:
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is not None:
            try:
                return float(value) * scale
            except ValueError:
                return None  # an HTTP date: the SDK computes it; dates are rare enough to accept
    return None


def timeout_error(llm: LlmSection) -> LLMError:
    return LLMError(f"the LLM request timed out ({llm.timeout_s:g} s per attempt)")


def connection_error() -> LLMError:
    return LLMError("could not connect to the LLM provider")


def status_error(status: int, llm: LlmSection) -> LLMError:
    """A short message that names the problem and the fix, never the key, the URL or the response body."""
    if status == 401:
        return LLMError(f"the LLM provider rejected the API key (HTTP 401); check {llm.api_key_env}")
    if status == 403:
        return LLMError("the API key may not use this model or endpoint (HTTP 403)")
    if status == 404:
        return LLMError(f"the LLM provider does not know model {llm.model!r} or the endpoint (HTTP 404)")
    if status == 429:
        return LLMError("the LLM provider is rate-limiting this agent (HTTP 429)")
    if status == 413:
        return LLMError("the request is too large for the LLM provider (HTTP 413)")
    if status == 529:
        return LLMError("the LLM provider is overloaded (HTTP 529)")
    if status >= 500:
        return LLMError(f"the LLM provider failed (HTTP {status})")
    return LLMError(f"the LLM provider refused the request (HTTP {status})")
