from collections.abc import Callable
from pathlib import Path

import pytest

from agent2389.config.files import inspect_config, load_agents
from agent2389.protocol.errors import ConfigError
from tests.conftest import REPO

VALID = """
[agent]
id = "researcher"
description = "Finds sources"
[mqtt]
broker_url = "mqtt://localhost:1883"
username_env = "MQTT_USERNAME"
password_env = "MQTT_PASSWORD"
[llm]
provider = "anthropic"
model = "claude-sonnet-4-5"
api_key_env = "ANTHROPIC_API_KEY"
system_prompt = "You are ..."
temperature = 0.7
max_tokens = 4000
[tools]
http_request = "builtin"
file_read = { impl = "builtin", config = { root = "/data" } }
"""


def write(tmp_path: Path, text: str, name: str = "agent.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def errors_of(path: Path) -> list[str]:
    return [str(problem) for problem in inspect_config(path, environ={}).errors]


def test_the_rfc_example_config_loads_with_its_defaults(tmp_path: Path) -> None:
    (agent,) = load_agents(write(tmp_path, VALID))
    assert agent.id == "researcher"
    assert agent.agent.max_pipeline_depth == 16 and agent.agent.max_message_bytes == 262144
    assert agent.mqtt.protocol == "5" and agent.mqtt.port == 1883 and not agent.mqtt.tls
    assert agent.tools["http_request"].impl == "builtin"
    assert agent.tools["file_read"].config == {"root": "/data"} and agent.tools["file_read"].timeout_s == 30


def test_every_example_config_in_the_repository_validates() -> None:
    for directory in sorted({p.parent for p in (REPO / "config").rglob("*.toml")}):
        report = inspect_config(directory)
        assert report.errors == [], directory


def test_unset_secret_variables_are_warnings_not_errors(tmp_path: Path) -> None:
    report = inspect_config(write(tmp_path, VALID), environ={})
    assert report.errors == []
    assert any("ANTHROPIC_API_KEY" in str(w) for w in report.warnings)


@pytest.mark.parametrize(
    ("breakage", "expected"),
    [
        (lambda t: t.replace('max_tokens = 4000', 'max_tokens = 4000\n[agent'), "TOML syntax error"),
        (lambda t: t.replace('id = "researcher"', 'id = "my agent"'), "agent.id: agent id must match"),
        (lambda t: t.replace('id = "researcher"\n', ''), "agent.id: missing required key"),
        (lambda t: t.replace('[agent]\nid = "researcher"\ndescription = "Finds sources"\n', ''),
         "missing section [agent]"),
        (lambda t: t.replace('temperature', 'temprature'), "did you mean 'temperature'"),
        (lambda t: t.replace('[tools]', '[tool]'), "did you mean 'tools'"),
        (lambda t: t.replace('"anthropic"', '"gpt4"'), "llm.provider"),
        (lambda t: t.replace('http_request = "builtin"', 'http_get = "builtin"'), "no builtin tool named 'http_get'"),
        (lambda t: t.replace('impl = "builtin"', 'impl = "magic"'), "unknown tool impl 'magic'"),
        (lambda t: t.replace('mqtt://localhost', 'http://localhost'), "must start with mqtt://"),
        (lambda t: t.replace('mqtt://localhost', 'mqtt://user:pw@localhost'), "must not carry credentials"),
        (lambda t: t.replace('temperature = 0.7', 'temperature = "hot"'), "llm.temperature"),
        (lambda t: t.replace('max_tokens = 4000', 'max_tokens = 0'), "llm.max_tokens"),
        (lambda t: t.replace('description = "Finds sources"', 'capabilities = "search"'),
         "agent.capabilities: Input should be a valid list"),
        (lambda t: t.replace('description = "Finds sources"', 'capabilities = ["search", 3]'),
         "agent.capabilities.1: Input should be a valid string"),
        (lambda t: t.replace('description = "Finds sources"', 'capabilities = ["a", " "]'),
         "agent.capabilities: capability ' ' must be 1 to 200 printable characters"),
        (lambda t: t.replace('description = "Finds sources"', 'capabilities = ["a", "b", "a"]'),
         "agent.capabilities: capabilities listed twice: 'a'"),
    ],
)
def test_a_broken_config_is_reported_with_file_key_and_reason(
    tmp_path: Path, breakage: Callable[[str], str], expected: str
) -> None:
    path = write(tmp_path, breakage(VALID))
    found = errors_of(path)
    assert any(expected in error and str(path) in error for error in found), found


def test_capabilities_are_read_from_the_agent_section(tmp_path: Path) -> None:
    text = VALID.replace('description = "Finds sources"', 'capabilities = ["search", "summarize"]')
    [agent] = load_agents(write(tmp_path, text))
    assert agent.agent.capabilities == ["search", "summarize"]


def test_toml_syntax_errors_carry_the_line_number(tmp_path: Path) -> None:
    (error,) = errors_of(write(tmp_path, '[agent]\nid = "a"\n[llm\n'))
    assert "line 3" in error


def test_every_problem_in_a_file_is_listed_at_once(tmp_path: Path) -> None:
    broken = VALID.replace("temperature", "temprature").replace('"anthropic"', '"x"').replace("4000", "-1")
    assert len(errors_of(write(tmp_path, broken))) == 3


def test_a_directory_holds_one_agent_per_file(tmp_path: Path) -> None:
    write(tmp_path, VALID, "a.toml")
    write(tmp_path, VALID.replace('"researcher"', '"writer"'), "b.toml")
    assert [a.id for a in load_agents(tmp_path)] == ["researcher", "writer"]


def test_duplicate_agent_ids_across_files_are_an_error(tmp_path: Path) -> None:
    write(tmp_path, VALID, "a.toml")
    write(tmp_path, VALID, "b.toml")
    assert any("duplicate agent id 'researcher'" in e for e in errors_of(tmp_path))


def test_agents_served_together_must_share_one_broker(tmp_path: Path) -> None:
    write(tmp_path, VALID, "a.toml")
    write(tmp_path, VALID.replace('"researcher"', '"w"').replace("localhost", "other"), "b.toml")
    assert any("same broker" in e for e in errors_of(tmp_path))


def test_an_empty_directory_or_missing_path_is_an_error(tmp_path: Path) -> None:
    assert any("no agent files" in e for e in errors_of(tmp_path))
    assert any("no such file" in e for e in errors_of(tmp_path / "nope.toml"))


def test_load_agents_raises_one_config_error_listing_all_problems(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="temprature"):
        load_agents(write(tmp_path, VALID.replace("temperature", "temprature")))
