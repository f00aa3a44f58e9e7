"""The one exception root, and the protocol error code each exception maps to.

Every failure that can reach an agent's conversation topic is an :class:`Agent2389Error`; its
``code`` is the protocol error code (PROTOCOL.md §3). Which failures make a delivery be tried again is
decided in agent2389/retry.py; a tool's ``retryable`` flag only decides whether the same tool call is
tried again within its task.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    TOOL_EXECUTION_FAILED = "tool_execution_failed"
    LLM_ERROR = "llm_error"
    INVALID_INPUT = "invalid_input"
    PIPELINE_DEPTH_EXCEEDED = "pipeline_depth_exceeded"
    INTERNAL_ERROR = "internal_error"


class Agent2389Error(Exception):
    """Root of every error agent2389 raises on purpose."""

    code: ErrorCode = ErrorCode.INTERNAL_ERROR


class ConfigError(Agent2389Error):
    """The configuration cannot be used; raised at start-up, never while serving."""


class InvalidInputError(Agent2389Error):
    code = ErrorCode.INVALID_INPUT


class LLMError(Agent2389Error):
    code = ErrorCode.LLM_ERROR


class ToolExecutionError(Agent2389Error):
    code = ErrorCode.TOOL_EXECUTION_FAILED
    # Whether the same call may succeed if tried again (workers/tools/executor.py retries it).
    retryable: bool = False


class RetryableToolError(ToolExecutionError):
    retryable = True


class ToolTimeoutError(ToolExecutionError):
    """A tool call ran past its timeout and was stopped."""


class BudgetExceededError(Agent2389Error):
    """The LLM iteration or tool-call budget ran out before a final answer."""

    code = ErrorCode.TOOL_EXECUTION_FAILED


class ServiceUnavailableError(Agent2389Error):
    """Redis or the MQTT broker did not answer; the work is kept and retried (agent2389/retry.py)."""


class MalformedEnvelopeError(InvalidInputError):
    """A task that reached a worker is not a valid envelope: nothing can be answered, it is dropped."""
