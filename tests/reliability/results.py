"""The measured numbers of each scenario, kept for docs/reliability.md.

Every scenario calls ``record``; the numbers of the last run of each scenario (fast or full) are kept
in build/reliability/results.json, and ``python -m tests.reliability.results`` prints them as the
Markdown table that docs/reliability.md shows (``--fast`` for the CI subset's numbers).

``make test`` runs the tests in two pytest-xdist worker processes: the file is updated under a lock, and
a scenario's numbers travel to the process that prints the run's summary in its test report
(``pytest_runtest_makereport`` in tests/reliability/conftest.py, ``collect`` in tests/conftest.py).
"""

from __future__ import annotations

import fcntl
import json
import os
import platform
import re
import sys
import time
from pathlib import Path
from typing import Any

# The repository's root (not tests.conftest.REPO: tests/conftest.py imports this module).
REPO = Path(__file__).resolve().parents[2]
RESULTS = Path(os.environ.get("RELIABILITY_RESULTS", REPO / "build" / "reliability" / "results.json"))
FULL = os.environ.get("RELIABILITY_FULL", "").lower() in ("1", "true", "yes")
COLUMNS = ("sent", "answered", "duplicated", "errors", "recovery_s")
# The name of a scenario's numbers among its test report's user_properties.
REPORT_PROPERTY = "reliability_record"
# Recorded by the tests this process ran, not yet attached to a test report.
unreported: list[dict[str, Any]] = []
# Every scenario's numbers this run, gathered from the test reports wherever the tests ran.
session_records: list[dict[str, Any]] = []


def record(scenario: str, **numbers: Any) -> None:
    entry = {"scenario": scenario, "mode": "full" if FULL else "fast",
             "when": time.strftime("%Y-%m-%d %H:%M:%S"), "host": f"{os.cpu_count()} cpu, {platform.python_version()}",
             **{k: round(v, 2) if isinstance(v, float) else v for k, v in numbers.items()}}
    unreported.append(entry)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    # Another worker process may record a scenario at the same moment: one read-modify-write at a time.
    with RESULTS.with_suffix(".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        saved = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
        saved[f"{entry['mode']}:{scenario}"] = entry
        RESULTS.write_text(json.dumps(saved, indent=1, sort_keys=True))


def take_unreported() -> list[tuple[str, object]]:
    """The numbers recorded since the last call, as user_properties of the test report that carries them."""
    taken = [(REPORT_PROPERTY, entry) for entry in unreported]
    unreported.clear()
    return taken


def collect(user_properties: list[tuple[str, object]]) -> None:
    """Keeps the scenario numbers a test report carries, for the summary at the end of the run."""
    session_records.extend(value for name, value in user_properties
                           if name == REPORT_PROPERTY and isinstance(value, dict))


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
