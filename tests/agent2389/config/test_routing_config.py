"""The [routing] section (PROTOCOL.md §9): loaded with its defaults, every mistake reported by validate."""

from pathlib import Path

import pytest

from agent2389.config.files import inspect_config, load_agents

BASE = '[agent]\nid = "entry"\n[llm]\nprovider = "echo"\n'


def errors_of(tmp_path: Path, routing: str) -> list[str]:
    path = tmp_path / "agent.toml"
    path.write_text(BASE + routing)
    return [str(problem) for problem in inspect_config(path, environ={}).errors]


def test_an_agent_without_routing_has_none(tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text(BASE)
    (agent,) = load_agents(tmp_path / "a.toml")
    assert agent.routing is None


def test_routing_loads_with_its_defaults(tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text(BASE + '[routing]\nstrategy = "llm"\n[routing.llm]\nmodel = "claude-haiku-4-5"\n')
    (agent,) = load_agents(tmp_path / "a.toml")
    assert agent.routing is not None and agent.routing.strategy == "llm"
    assert agent.routing.max_iterations == 10 and agent.routing.allow is None
    assert agent.routing.llm is not None and agent.routing.llm.model == "claude-haiku-4-5"


def test_a_gatekeeper_loads_with_its_timeout_and_retries(tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text(
        BASE + '[routing]\nstrategy = "gatekeeper"\nallow = ["writer"]\n'
        '[routing.gatekeeper]\nurl = "http://127.0.0.1:8000/should_agents_respond"\n')
    (agent,) = load_agents(tmp_path / "a.toml")
    assert agent.routing is not None and agent.routing.gatekeeper is not None
    assert agent.routing.gatekeeper.timeout_ms == 5000 and agent.routing.gatekeeper.retry_attempts == 3
    assert agent.routing.allow == ["writer"]


@pytest.mark.parametrize(("routing", "expected"), [
    ('[routing]\nstrategy = "random"\n', "routing.strategy"),
    ('[routing]\nmax_iterations = 3\n', "routing.strategy: missing required key"),
    ('[routing]\nstrategy = "gatekeeper"\n', "needs a [routing.gatekeeper] section"),
    ('[routing]\nstrategy = "gatekeeper"\n[routing.gatekeeper]\ntimeout_ms = 10\n',
     "routing.gatekeeper.url: missing required key"),
    ('[routing]\nstrategy = "gatekeeper"\n[routing.gatekeeper]\nurl = "ftp://127.0.0.1/x"\n',
     "routing.gatekeeper.url: url must be an http"),
    ('[routing]\nstrategy = "llm"\nmax_iterations = 0\n', "routing.max_iterations"),
    ('[routing]\nstrategy = "llm"\nallow = ["no spaces"]\n', "routing.allow.0"),
    ('[routing]\nstrategy = "llm"\nmax_iteration = 3\n', "did you mean 'max_iterations'"),
    ('[routing]\nstrategy = "gatekeeper"\n[routing.gatekeeper]\nurl = "http://127.0.0.1/x"\ntimeout = 5\n',
     "did you mean 'timeout_ms'"),
])
def test_a_broken_routing_section_is_reported_with_its_key(tmp_path: Path, routing: str, expected: str) -> None:
    found = errors_of(tmp_path, routing)
    assert any(expected in error for error in found), found


def test_every_routing_problem_is_listed_at_once(tmp_path: Path) -> None:
    found = errors_of(tmp_path, '[routing]\nstrategy = "nope"\nmax_iterations = -1\ncolour = "red"\n')
    assert len(found) == 3, found
