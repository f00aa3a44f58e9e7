"""The measured numbers of each scenario, kept for docs/reliability.md.

Every scenario calls ``record``; the numbers of the last run of each scenario (fast or full) are kept
in build/reliability/results.json, and ``python -m tests.reliability.results`` prints them as the
Markdown table that docs/reliability.md shows (``--fast`` for the CI subset's numbers).
"""

from __future__ import annotations

import json
import os
import platform
import re
import sys
import time
from pathlib import Path
from typing import Any

from tests.conftest import REPO

RESULTS = Path(os.environ.get("RELIABILITY_RESULTS", REPO / "build" / "reliability" / "results.json"))
FULL = os.environ.get("RELIABILITY_FULL", "").lower() in ("1", "true", "yes")
COLUMNS = ("sent", "answered", "duplicated", "errors", "recovery_s")
session_records: list[dict[str, Any]] = []


def record(scenario: str, **numbers: Any) -> None:
    entry = {"scenario": scenario, "mode": "full" if FULL else "fast",
             "when": time.strftime("%Y-%m-%d %H:%M:%S"), "host": f"{os.cpu_count()} cpu, {platform.python_version()}",
             **{k: round(v, 2) if isinstance(v, float) else v for k, v in numbers.items()}}
    session_records.append(entry)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    saved = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    saved[f"{entry['mode']}:{scenario}"] = entry
    RESULTS.write_text(json.dumps(saved, indent=1, sort_keys=True))


def table(entries: list[dict[str, Any]]) -> str:
    lines = ["| scenario | mode | " + " | ".join(COLUMNS) + " | other measurements |",
             "|---|---|" + "---|" * len(COLUMNS) + "---|"]
    for entry in sorted(entries, key=_scenario_order):
        main = ["-" if entry.get(column) is None else str(entry[column]) for column in COLUMNS]
        others = ", ".join(f"{k} {v}" for k, v in entry.items()
                           if k not in (*COLUMNS, "scenario", "mode", "when", "host"))
        lines.append(f"| {entry['scenario']} | {entry['mode']} | " + " | ".join(main) + f" | {others} |")
    return "\n".join(lines)


def _scenario_order(entry: dict[str, Any]) -> tuple[int, str]:
    number = re.match(r"\d+", entry["scenario"])
    return (int(number.group()) if number else 0), entry["scenario"]


if __name__ == "__main__":
    saved = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    wanted = "fast" if "--fast" in sys.argv else "full"
    print(table([entry for entry in saved.values() if entry["mode"] == wanted]))
