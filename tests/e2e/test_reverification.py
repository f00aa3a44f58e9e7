"""An agent whose LLM was down when the worker started is served once the LLM is back, without a restart."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from fakes import anthropic_api
from fakes.anthropic_api import API_KEY_ENV, FakeAnthropic
from fakes.anthropic_replies import Text
from tests.e2e.stack import MqttPeer, Process, Stack, write_agent

fake_anthropic = anthropic_api.fake_anthropic
pytestmark = pytest.mark.slow  # a worker start-up imports the Anthropic SDK: about 5 s


@pytest.fixture
def agents(unique_id: str) -> dict[str, str]:
    return {"llm": f"llm-{unique_id}", "echo": f"echo-{unique_id}"}


@pytest.fixture
def config_dir(tmp_path: Path, agents: dict[str, str], mqtt_url: str, fake_anthropic: FakeAnthropic) -> Path:
    directory = tmp_path / "agents"
    directory.mkdir()
    # A worker with no agent it can serve exits; this one always has its echo agent.
    write_agent(directory, agents["echo"], mqtt_url)
    (directory / "llm.toml").write_text(
        f'[agent]\nid = "{agents["llm"]}"\n'
        f'[mqtt]\nbroker_url = "{mqtt_url}"\n'
        f'[llm]\nprovider = "anthropic"\nmodel = "claude-haiku-5-5"\nbase_url = "{fake_anthropic.url}"\n'
        f'api_key_env = "{API_KEY_ENV}"\nmax_retries = 0\ntimeout_s = 5\n'
    )
    return directory


def test_an_agent_that_failed_verification_at_start_up_is_served_once_its_llm_answers(
    stack: Stack, peer: MqttPeer, agents: dict[str, str], fake_anthropic: FakeAnthropic,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    agent = agents["llm"]
    working_key = fake_anthropic.api_key
    # The provider rejects the worker's key at start-up, as an outage or a key being rotated would.
    fake_anthropic.api_key = "sk-ant-not-yet"
    monkeypatch.setenv("AGENT2389_REVERIFY_INTERVAL", "1")
    peer.subscribe(f"/control/agents/{agent}/status")
    worker = stack.worker()
    stack.bridge()
    wait_for_log(worker, "cannot be served by this worker", timeout_s=30)
    peer.wait_for_status(agent, "unavailable")

    fake_anthropic.respond(lambda request: Text("served after all"))
    fake_anthropic.api_key = working_key
    peer.wait_for_status(agent, "available", timeout_s=30)
    cid = f"conv-{agent}"
    peer.subscribe(f"/conversations/{cid}/#")
    task = peer.send_task(agent, cid, "hello")
    [(topic, body, _)] = peer.expect(1, timeout_s=30)
    assert (topic, body) == (f"/conversations/{cid}/{agent}", {"task_id": task["task_id"],
                                                               "response": "served after all"})
    assert worker.popen.poll() is None
    wait_for_log(worker, "passed verification", timeout_s=1)


def wait_for_log(process: Process, text: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not process.logged(text):
        assert time.monotonic() < deadline, f"{process.name} never logged {text!r}"
        time.sleep(0.2)
