"""Talking to the Messages API: verification, the retry policy, time-outs and the errors people see."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from agent2389.protocol.errors import ErrorCode, LLMError
from fakes.anthropic_api import API_KEY_ENV, FakeAnthropic
from fakes.anthropic_replies import Delay, Failure, Text
from tests.workers.llm.agents import agent_for, task
from workers.llm.anthropic_runner import AnthropicRunner

MakeRunner = Callable[..., AnthropicRunner]


def test_verification_lists_models_and_spends_no_tokens(fake_anthropic: FakeAnthropic, runner_for: MakeRunner) -> None:
    runner_for(agent_for(fake_anthropic)).verify()

    assert [(r.method, r.path) for r in fake_anthropic.requests] == [("GET", "/v1/models")]


def test_verification_without_the_key_in_the_environment_names_the_variable(
    fake_anthropic: FakeAnthropic, runner_for: MakeRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(API_KEY_ENV)

    with pytest.raises(LLMError, match=f"environment variable {API_KEY_ENV} is not set"):
        runner_for(agent_for(fake_anthropic)).verify()
    assert fake_anthropic.requests == []


def test_a_rejected_key_fails_verification_once_without_showing_the_key(
    fake_anthropic: FakeAnthropic, runner_for: MakeRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(API_KEY_ENV, "sk-ant-wrong-key-9876543210")

    with pytest.raises(LLMError) as raised:
        runner_for(agent_for(fake_anthropic, max_retries=3)).verify()

    assert str(raised.value) == f"the LLM provider rejected the API key (HTTP 401); check {API_KEY_ENV}"
    assert len(fake_anthropic.requests) == 1


def test_a_429_is_retried_and_the_task_succeeds(fake_anthropic: FakeAnthropic, runner_for: MakeRunner) -> None:
    fake_anthropic.reply(Failure(429, headers={"retry-after": "0.05"}), Failure(529), Text("made it"))
    agent = agent_for(fake_anthropic, max_retries=2)

    assert runner_for(agent).run(task(agent)) == "made it"
    assert len(fake_anthropic.message_requests()) == 3


def test_retries_end_after_max_retries_with_a_clear_error(
    fake_anthropic: FakeAnthropic, runner_for: MakeRunner
) -> None:
    fake_anthropic.reply(*[Failure(503, headers={"retry-after-ms": "10"})] * 3, Text("too late"))
    agent = agent_for(fake_anthropic, max_retries=2)

    with pytest.raises(LLMError, match=r"^the LLM provider failed \(HTTP 503\)$"):
        runner_for(agent).run(task(agent))
    assert len(fake_anthropic.message_requests()) == 3


@pytest.mark.parametrize(("status", "message"), [
    (400, "the LLM provider refused the request (HTTP 400)"),
    (401, f"the LLM provider rejected the API key (HTTP 401); check {API_KEY_ENV}"),
    (403, "the API key may not use this model or endpoint (HTTP 403)"),
    (404, "the LLM provider does not know model 'claude-sonnet-5-5' or the endpoint (HTTP 404)"),
])
def test_client_errors_are_never_retried(
    fake_anthropic: FakeAnthropic, runner_for: MakeRunner, status: int, message: str
) -> None:
    fake_anthropic.reply(Failure(status, message="details the user must not see"), Text("never reached"))
    agent = agent_for(fake_anthropic, max_retries=3)

    with pytest.raises(LLMError) as raised:
        runner_for(agent).run(task(agent))

    assert str(raised.value) == message
    assert raised.value.code is ErrorCode.LLM_ERROR
    assert len(fake_anthropic.message_requests()) == 1


def test_a_server_asking_for_a_long_wait_fails_at_once(fake_anthropic: FakeAnthropic, runner_for: MakeRunner) -> None:
    fake_anthropic.reply(Failure(429, headers={"retry-after": "3600"}), Text("an hour later"))
    agent = agent_for(fake_anthropic, max_retries=2)
    started = time.monotonic()

    with pytest.raises(LLMError, match=r"rate-limiting this agent \(HTTP 429\)"):
        runner_for(agent).run(task(agent))

    assert time.monotonic() - started < 5
    assert len(fake_anthropic.message_requests()) == 1


def test_a_request_that_takes_too_long_times_out(fake_anthropic: FakeAnthropic, runner_for: MakeRunner) -> None:
    fake_anthropic.reply(Delay(5, Text("slow answer")))
    agent = agent_for(fake_anthropic, timeout_s=0.5, max_retries=0)
    started = time.monotonic()

    with pytest.raises(LLMError, match=r"^the LLM request timed out \(0\.5 s per attempt\)$"):
        runner_for(agent).run(task(agent))

    assert time.monotonic() - started < 3


def test_a_provider_that_cannot_be_reached_is_an_llm_error(
    fake_anthropic: FakeAnthropic, runner_for: MakeRunner
) -> None:
    agent = agent_for(fake_anthropic, base_url="http://127.0.0.1:9", max_retries=0)

    with pytest.raises(LLMError, match=r"^could not connect to the LLM provider$"):
        runner_for(agent).verify()


def test_the_sdk_base_url_variable_is_honoured_when_the_config_has_none(
    fake_anthropic: FakeAnthropic, runner_for: MakeRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_BASE_URL", fake_anthropic.url)
    fake_anthropic.reply(Text("via the environment"))
    agent = agent_for(fake_anthropic, base_url=None)

    assert runner_for(agent).run(task(agent)) == "via the environment"


def test_error_messages_never_contain_the_key_or_the_address(
    fake_anthropic: FakeAnthropic, runner_for: MakeRunner
) -> None:
    messages = []
    for failure in (Failure(400, message=f"bad key {fake_anthropic.api_key}"), Failure(500), Delay(2, Text("x"))):
        fake_anthropic.reply(failure)
        agent = agent_for(fake_anthropic, timeout_s=0.3)
        with pytest.raises(LLMError) as raised:
            runner_for(agent).run(task(agent))
        messages.append(str(raised.value))

    assert all(fake_anthropic.api_key not in m and "127.0.0.1" not in m and "http" not in m for m in messages)


def test_many_calls_at_once_keep_their_connections_for_the_next_ones(
    fake_anthropic: FakeAnthropic, runner_for: MakeRunner
) -> None:
    fake_anthropic.respond(lambda body: Delay(0.3, Text("ok")))
    agent = agent_for(fake_anthropic)
    runner = runner_for(agent)
    at_once = 120  # more than the SDK's default of 100 connections kept alive

    for _ in range(2):
        with ThreadPoolExecutor(at_once) as pool:
            assert list(pool.map(lambda _: runner.run(task(agent)), range(at_once))) == ["ok"] * at_once

    opened = {r.peer_port for r in fake_anthropic.requests if r.path == "/v1/messages"}
    assert len(opened) <= at_once + 5, f"{len(opened)} connections for {at_once} calls at once"
