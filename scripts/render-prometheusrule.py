#!/usr/bin/env python3
"""Write k8s/monitoring/prometheusrule.yaml from config/prometheus/alerts.yml (one source of alerts).

Run it after changing the alerts. ``--check`` only compares, and exits 1 while the two differ.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
ALERTS = REPO / "config" / "prometheus" / "alerts.yml"
RULE = REPO / "k8s" / "monitoring" / "prometheusrule.yaml"
HEADER = "# Generated from config/prometheus/alerts.yml by scripts/render-prometheusrule.py: do not edit.\n"


def prometheus_rule(alerts: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "agent2389-alerts", "labels": {"app": "agent", "role": "alert-rules"}},
        "spec": {"groups": alerts["groups"]},
    }


def render() -> str:
    alerts = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    return HEADER + yaml.safe_dump(prometheus_rule(alerts), sort_keys=False, allow_unicode=True, width=120)


def main() -> int:
    if not ALERTS.is_file():
        print(f"render-prometheusrule: {ALERTS.relative_to(REPO)} does not exist", file=sys.stderr)
        return 1
    wanted = render()
    if "--check" in sys.argv[1:]:
        current = RULE.read_text(encoding="utf-8") if RULE.is_file() else ""
        if current != wanted:
            print(f"{RULE.relative_to(REPO)} is out of date: run scripts/render-prometheusrule.py", file=sys.stderr)
            return 1
        return 0
    RULE.write_text(wanted, encoding="utf-8")
    print(f"wrote {RULE.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
