"""config/grafana/agent2389-dashboard.json: the runbook's seven panels, on the provisioned data source."""

from __future__ import annotations

import json
from typing import Any

from tests.web.test_alert_rules import DASHBOARD

RUNBOOK_PANELS = ("Task throughput", "Error rate", "Processing time percentiles", "MQTT connection status",
                  "Active tasks (pipeline depth)", "Memory usage", "CPU usage")


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def test_the_dashboard_has_the_runbooks_seven_panels() -> None:
    titles = [panel["title"] for panel in dashboard()["panels"]]
    assert all(title in titles for title in RUNBOOK_PANELS), titles


def test_every_panel_queries_the_provisioned_prometheus_data_source() -> None:
    for panel in dashboard()["panels"]:
        assert panel["datasource"] == {"type": "prometheus", "uid": "prometheus"}, panel["title"]
        assert panel["targets"] and all(t["expr"] for t in panel["targets"]), panel["title"]
        assert all(t["datasource"]["uid"] == "prometheus" for t in panel["targets"])


def test_panels_have_unique_ids_and_do_not_overlap() -> None:
    panels = dashboard()["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    cells = set()
    for panel in panels:
        grid = panel["gridPos"]
        columns, rows = range(grid["x"], grid["x"] + grid["w"]), range(grid["y"], grid["y"] + grid["h"])
        area = {(x, y) for x in columns for y in rows}
        assert not area & cells, f"{panel['title']} overlaps another panel"
        assert grid["x"] + grid["w"] <= 24
        cells |= area


def test_the_dashboard_has_a_stable_uid_and_an_agent_filter() -> None:
    board = dashboard()
    assert board["uid"] == "agent2389"
    [variable] = board["templating"]["list"]
    assert variable["name"] == "agent" and variable["includeAll"] and variable["multi"]
