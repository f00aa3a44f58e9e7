"""The SDK cost script, run small: it prints one row per thread count and round, with numbers in it."""

from __future__ import annotations

import pytest

from bench import sdk_cost

# Runs the SDK cost script in processes of its own.
pytestmark = pytest.mark.slow


def test_the_sdk_cost_script_prints_a_row_of_cpu_per_call_for_each_thread_count(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert sdk_cost.main(["--threads", "1,4", "--waves", "1", "--rounds", "1", "--delay", "0"]) == 0
    header, *rows = capsys.readouterr().out.splitlines()
    assert "blocking ms CPU/call" in header and "loop ms CPU/call" in header
    assert [row.split("|")[0].strip() for row in rows] == ["1", "4"]
    for row in rows:
        cells = [float(cell) for cell in row.split("|")[2:]]
        assert len(cells) == 4 and all(cell > 0 for cell in cells)
