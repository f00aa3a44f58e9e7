"""The LLM limits benchmark, run small: the limiter's cost row and one fan-in row per mode, with numbers."""

from __future__ import annotations

import pytest

from bench import llm_limits


def test_the_limits_benchmark_prints_the_limiter_cost_and_both_fan_in_runs(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, redis_url: str) -> None:
    monkeypatch.setenv("REDIS_URL", redis_url)

    assert llm_limits.main(["--calls", "50", "--tasks", "40", "--threads", "10", "--capacity", "3",
                            "--delay", "0.01", "--retry-after", "0.05"]) == 0

    cost, header, unlimited, limited = capsys.readouterr().out.splitlines()
    assert cost.startswith("limiter, free slot:") and "2.00 Redis round trips per call" in cost
    assert "goodput/s" in header
    assert unlimited.split("|")[0].strip() == "no limit"
    cells = [float(cell) for cell in limited.split("|")[1:]]
    assert cells[0] > 0 and cells[1:3] == [0, 0]  # with the limit: nothing failed, no 429
