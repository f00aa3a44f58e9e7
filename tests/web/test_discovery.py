"""Every agent on the broker, ours and foreign, in /api/agents, ``inspect agents`` and /metrics (PROTOCOL.md §8)."""

from __future__ import annotations

import json
import time

import pytest
from flask.testing import FlaskClient

from agent2389.ops.cli import main
from tests.web.conftest import System
from tests.web.test_prometheus import scrape, value


def agents_by_id(client: FlaskClient) -> dict[str, dict[str, object]]:
    return {a["agent"]: a for a in client.get("/api/agents").get_json()["agents"]}


def test_a_foreign_agent_is_listed_marked_with_its_capabilities_load_and_last_seen(client: FlaskClient,
                                                                                   system: System) -> None:
    system.healthy()
    system.status("rust-agent", capabilities=["search", "rust"], load=0.25)
    rust = agents_by_id(client)["rust-agent"]
    assert rust["foreign"] is True and rust["routable"] is True
    assert (rust["capabilities"], rust["load"], rust["status"]) == (["search", "rust"], 0.25, "available")
    assert abs(float(rust["last_seen"]) - time.time()) < 5  # type: ignore[arg-type]
    assert rust["tasks_completed"] is None and rust["expected"] is False


def test_our_agents_show_what_their_statuses_advertise(client: FlaskClient, system: System) -> None:
    system.healthy()
    system.status("echo", ours=True, description="Echoes", capabilities=["echo"], workers=1, load=0.5,
                  expiry_s=90)
    agents = agents_by_id(client)
    echo, writer = agents["echo"], agents["writer"]
    assert (echo["foreign"], echo["capabilities"], echo["load"], echo["routable"]) == (False, ["echo"], 0.5, True)
    assert echo["expires_at"] == pytest.approx(float(echo["last_seen"]) + 90)  # type: ignore[arg-type]
    assert (writer["foreign"], writer["last_seen"], writer["routable"]) == (False, None, False)


def test_an_unavailable_or_expired_agent_is_listed_but_not_routable(client: FlaskClient, system: System) -> None:
    system.status("stopped", "unavailable")
    system.status("vanished", expiry_s=0)
    agents = agents_by_id(client)
    assert (agents["stopped"]["status"], agents["stopped"]["routable"]) == ("unavailable", False)
    assert (agents["vanished"]["status"], agents["vanished"]["routable"]) == ("expired", False)


def test_the_registry_is_counted_by_status_and_origin_in_both_metrics_formats(client: FlaskClient,
                                                                               system: System) -> None:
    system.status("echo", ours=True)
    system.status("rust-agent")
    system.status("py-agent", "unavailable")
    system.status("gone", expiry_s=0)
    system.registry_garbage()
    registry = client.get("/metrics").get_json()["registry"]
    assert registry == {"agents": 4, "by_status": {"available": 2, "unavailable": 1, "expired": 1}, "foreign": 3,
                        "routable": 2, "ignored_payloads": 1}
    samples = scrape(client)
    assert value(samples, "agent2389_registry_agents", status="available", origin="ours") == 1
    assert value(samples, "agent2389_registry_agents", status="available", origin="foreign") == 1
    assert value(samples, "agent2389_registry_agents", status="unavailable", origin="foreign") == 1
    assert value(samples, "agent2389_registry_agents", status="expired", origin="foreign") == 1
    assert value(samples, "agent2389_registry_ignored_payloads_total") == 1


def test_inspect_agents_lists_foreign_agents_marked_as_such(capsys: pytest.CaptureFixture[str], system: System,
                                                            monkeypatch: pytest.MonkeyPatch, redis_url: str,
                                                            key_prefix: str) -> None:
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("AGENT2389_KEY_PREFIX", key_prefix)
    system.healthy()
    system.status("rust-agent", capabilities=["search", "rust"], load=0.25)
    assert main(["inspect", "agents"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[-3:] == ["LOAD", "SEEN", "CAPABILITIES"]
    [rust] = [line for line in lines if line.startswith("rust-agent")]
    assert rust.split()[:3] == ["rust-agent", "(foreign)", "available"] and rust.split()[-1] == "search,rust"
    assert "0.25" in rust.split()
    assert main(["inspect", "agents", "--json"]) == 0
    rows = {row["agent"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows["rust-agent"]["foreign"] is True
