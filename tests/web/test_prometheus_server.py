"""A real Prometheus (Debian package) scrapes the web app with no special settings and evaluates our rules."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent2389.config.settings import Settings
from tests.services import IN_CI, free_port
from tests.web.conftest import System
from tests.web.test_alert_rules import DASHBOARD, RULES
from web.app import make_server, stop_server


def prometheus_binary() -> str:
    path = shutil.which("prometheus")
    if path is None:
        if IN_CI:
            pytest.fail("prometheus is not installed and CI=true: apt-get install prometheus (see .ci/run)")
        pytest.skip("prometheus is not installed (Debian package prometheus)")
    return path


@pytest.fixture
def web_port(settings: Settings) -> Iterator[int]:
    port = free_port()
    server = make_server(settings, port, host="127.0.0.1")
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    yield port
    stop_server(server)
    thread.join(timeout=5)


@pytest.fixture
def prometheus(web_port: int, tmp_path: Path) -> Iterator[str]:
    binary = prometheus_binary()
    port = free_port()
    config = tmp_path / "prometheus.yml"
    # Deliberately nothing but the target: Prometheus' own defaults (its Accept header included).
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        f"rule_files:\n  - {RULES}\n"
        f"scrape_configs:\n  - job_name: agent2389\n    static_configs:\n      - targets: ['127.0.0.1:{web_port}']\n"
    )
    log = (tmp_path / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}"], stdout=log, stderr=subprocess.STDOUT)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=15)
        log.close()


def api(base: str, path: str, **params: str) -> Any:
    url = f"{base}/api/v1/{path}" + (f"?{urllib.parse.urlencode(params)}" if params else "")
    with urllib.request.urlopen(url, timeout=5) as response:
        body = json.loads(response.read())
    assert body["status"] == "success", body
    return body["data"]


def eventually(check: Any, timeout_s: float = 30) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            result = check()
            if result:
                return result
        except (OSError, AssertionError, KeyError, IndexError, ValueError):
            if time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            pytest.fail("Prometheus did not get there in time")
        time.sleep(0.5)


@pytest.mark.slow
def test_prometheus_scrapes_the_web_app_evaluates_the_rules_and_answers_the_dashboard(
    prometheus: str, system: System
) -> None:
    system.bridge(connected=False, subscribed=False)
    system.beating("w1")  # only the MQTT alert may fire, however long Prometheus takes
    for i in range(5):
        system.task("echo", f"t{i}", 0.2, model="claude-test", tools=(("http_request", "ok"),))

    def target_up() -> bool:
        [target] = api(prometheus, "targets")["activeTargets"]
        return bool(target["health"] == "up")

    eventually(target_up)
    result = eventually(lambda: api(prometheus, "query", query='agent2389_tasks_completed_total{agent="echo"}')
                        ["result"])
    assert float(result[0]["value"][1]) == 5

    def rules_evaluated() -> list[dict[str, Any]]:
        rules = [rule for group in api(prometheus, "rules")["groups"] for rule in group["rules"]]
        return rules if all(rule["lastEvaluation"] > "2000" for rule in rules) else []

    rules = eventually(rules_evaluated)
    assert len(rules) == 8 and all(rule["health"] == "ok" for rule in rules), rules
    alerts = eventually(lambda: api(prometheus, "alerts")["alerts"])
    assert {alert["labels"]["alertname"] for alert in alerts} == {"MQTTDisconnected"}

    system.task("echo", "t-late", 0.4, tools=(("http_request", "ok"),))
    time.sleep(2.5)  # rate() needs two samples in its window that differ
    for panel in json.loads(DASHBOARD.read_text())["panels"]:
        for target in panel["targets"]:
            expr = target["expr"].replace("$agent", ".*").replace("$__rate_interval", "30s")
            assert api(prometheus, "query", query=expr)["result"], f"{panel['title']}: {expr} returned no series"
