"""The Anthropic SDK client as agent2389 uses it, and the safe text of every error it raises.

The retry and time-out policy is in :mod:`workers.llm.policy`; the SDK carries it out. Workers use the
async client on the provider's event loop (:mod:`workers.llm.call_loop`); the blocking one is here for
``bench.sdk_cost``, which compares the two.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import anthropic
import httpx2

from agent2389.config.agent import LlmSection
from agent2389.protocol.errors import LLMError
from workers.llm import policy
from workers.llm.call_loop import async_hooks


def make_client(llm: LlmSection, on_response: Sequence[Callable[[httpx2.Response], None]] = ()) -> anthropic.Anthropic:
    """A thread-safe client; ``base_url`` from config, else ANTHROPIC_BASE_URL, else Anthropic's API.
    ``on_response`` hooks see every response, retried attempts included."""
    hooks = [policy.refuse_long_retry_after, *on_response]
    http_client = anthropic.DefaultHttpxClient(event_hooks={"response": hooks},
                                               limits=policy.CONNECTION_LIMITS)
    return anthropic.Anthropic(http_client=http_client, **_settings(llm))


def make_async_client(llm: LlmSection, on_response: Sequence[Callable[[httpx2.Response], None]] = ()
                      ) -> anthropic.AsyncAnthropic:
    """The same client for an event loop: to be used on one loop only (:class:`workers.llm.call_loop.LoopClient`).

    On the SDK's aiohttp transport: the same calls cost the loop about half the CPU they cost on httpx's own
    (1.2 against 2.1 ms at 500 at once; docs/performance.md), and the loop's CPU is what limits fan-in."""
    hooks = async_hooks(policy.refuse_long_retry_after, *on_response)
    http_client = anthropic.DefaultAioHttpClient(event_hooks={"response": hooks},
                                                 limits=policy.CONNECTION_LIMITS, verify=policy.ssl_context())
    return anthropic.AsyncAnthropic(http_client=http_client, **_settings(llm))


def _settings(llm: LlmSection) -> dict[str, Any]:
    return {"api_key": policy.api_key(llm), "base_url": llm.base_url, "timeout": policy.request_timeout(llm),
            "max_retries": llm.max_retries}


def llm_error(exc: Exception, llm: LlmSection) -> LLMError:
    if isinstance(exc, LLMError):
        return exc
    if isinstance(exc, anthropic.APITimeoutError):
        return policy.timeout_error(llm)
    if isinstance(exc, anthropic.APIConnectionError):
        return policy.connection_error()
    if isinstance(exc, anthropic.APIStatusError):
        return policy.status_error(exc.status_code, llm)
    if isinstance(exc, anthropic.APIResponseValidationError):
        return LLMError("the LLM provider sent a response this agent cannot read")
    return LLMError(f"the LLM call failed ({type(exc).__name__})")
