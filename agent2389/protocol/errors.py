"""The one exception root, and the protocol error code each exception maps to.

Every failure that can reach an agent's conversation topic is an :class:`Agent2389Error`; its
``code`` is the protocol error code (PROTOCOL.md §3) and its ``retryable`` flag is the single place
that decides whether trying again can help.
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
    retryable: bool = False


class ConfigError(Agent2389Error):
    """The configuration cannot be used; raised at start-up, never while serving."""


class InvalidInputError(Agent2389Error):
    code = ErrorCode.INVALID_INPUT


class PipelineDepthExceededError(Agent2389Error):
    code = ErrorCode.PIPELINE_DEPTH_EXCEEDED


class LLMError(Agent2389Error):
    code = ErrorCode.LLM_ERROR


class RetryableLLMError(LLMError):
    retryable = True


class ToolExecutionError(Agent2389Error):
    code = ErrorCode.TOOL_EXECUTION_FAILED


class RetryableToolError(ToolExecutionError):
    retryable = True


class ToolTimeoutError(ToolExecutionError):
    """A tool call ran past its timeout and was stopped."""


class BudgetExceededError(Agent2389Error):
    """The LLM iteration or tool-call budget ran out before a final answer."""

    code = ErrorCode.TOOL_EXECUTION_FAILED


class ServiceUnavailableError(Agent2389Error):
    """Redis or the MQTT broker did not answer; the work is kept and retried."""

    retryable = True


def error_code_for(exc: BaseException) -> ErrorCode:
    """The protocol code for any exception; anything unexpected is an internal error."""
    if isinstance(exc, Agent2389Error):
        return exc.code
    return ErrorCode.INTERNAL_ERROR
