"""config/prometheus/alerts.yml: valid for promtool, unit-tested, and only about metrics we serve."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import REPO
from tests.services import IN_CI
from tests.web.conftest import System

RULES = REPO / "config" / "prometheus" / "alerts.yml"
RULE_TESTS = REPO / "config" / "prometheus" / "alerts.test.yml"
DASHBOARD = REPO / "config" / "grafana" / "agent2389-dashboard.json"
RUNBOOK_ALERTS = {"AgentDown", "HighErrorRate", "MQTTDisconnected", "SlowTaskProcessing", "NoWorkersOnline",
                  "QueueBacklog"}


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        if IN_CI:
            pytest.fail("promtool is not installed and CI=true: apt-get install prometheus (see .ci/run)")
        pytest.skip("promtool is not installed (Debian package prometheus)")
    return path


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=60, check=False, cwd=RULES.parent)


def test_promtool_accepts_the_rules() -> None:
    result = run(promtool(), "check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 8 rules found" in result.stdout


def test_the_rules_pass_their_unit_tests() -> None:
    result = run(promtool(), "test", "rules", str(RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_runbook_alert_is_defined_and_unit_tested() -> None:
    defined = set(re.findall(r"- alert: (\w+)", RULES.read_text()))
    tested = set(re.findall(r"alertname: (\w+)", RULE_TESTS.read_text()))
    assert defined >= RUNBOOK_ALERTS
    assert defined == tested


def served_names(client: FlaskClient, system: System) -> set[str]:
    system.healthy()
    system.task("echo", "t1", 0.3, error_code="llm_error", model="m", tools=(("http_request", "timeout"),))
    system.stats.task_rejected("echo", "invalid_json")
    text = client.get("/metrics?format=prometheus").get_data(as_text=True)
    names = set()
    for family in text_string_to_metric_families(text):
        names |= {sample.name for sample in family.samples}
    return names


@pytest.mark.parametrize("path", [RULES, DASHBOARD], ids=["alert rules", "grafana dashboard"])
def test_every_metric_the_config_uses_is_one_the_web_app_serves(client: FlaskClient, system: System,
                                                                path: Path) -> None:
    served = served_names(client, system)
    used = set(re.findall(r"\bagent2389_[a-z0-9_]+", path.read_text())) - {"agent2389_"}
    assert used, f"{path} uses no agent2389 metric"
    assert used <= served, f"{path} uses metrics nobody serves: {sorted(used - served)}"
