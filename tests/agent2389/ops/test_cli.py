import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

# The command runs as a process of its own, as an operator runs it.
pytestmark = pytest.mark.slow


def agent2389(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent2389.ops.cli", *args], capture_output=True, text=True, timeout=60, cwd=REPO
    )


def test_validate_prints_one_summary_line_per_agent_and_exits_0() -> None:
    result = agent2389("validate", "--config", "config/examples/pipeline")
    assert result.returncode == 0, result.stderr
    assert [line.split()[1] for line in result.stdout.splitlines()] == ["editor", "researcher", "writer"]


def test_validate_accepts_config_before_the_subcommand_as_the_runbook_writes_it() -> None:
    result = agent2389("--config", "config/examples/echo", "validate")
    assert result.returncode == 0, result.stderr
    assert "ok: echo" in result.stdout


def test_validate_logs_configuration_loaded_as_a_json_line() -> None:
    result = agent2389("validate", "--config", "config/examples/echo")
    lines = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    assert any(line["fields"]["message"] == "Configuration loaded" for line in lines)


def test_validate_exits_1_and_lists_every_problem(tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text('[agent]\nid = "a b"\n[llm]\nprovider = "x"\nmodle = "m"\n')
    result = agent2389("validate", "--config", str(tmp_path))
    assert result.returncode == 1
    assert "agent.id" in result.stderr and "llm.provider" in result.stderr and "did you mean 'model'" in result.stderr
    assert "invalid (3 problems)" in result.stderr


def test_validate_without_config_says_what_is_missing() -> None:
    result = agent2389("validate")
    assert result.returncode == 2 and "--config PATH is required" in result.stderr
