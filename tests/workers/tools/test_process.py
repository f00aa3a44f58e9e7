"""A tool process lives and dies with its worker, and only speaks when spoken to."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from agent2389.config.agent import ToolSpec
from tests.conftest import REPO
from tests.workers.tools.sample_tools import SAMPLE
from workers.tools.process import ToolProcess

# Every test starts a tool process.
pytestmark = pytest.mark.slow

# The worker dies while its tool process is stuck in a loop, so closing stdin cannot end the tool process.
WORKER_THAT_DIES = f"""
import os, signal, threading, time
from agent2389.config.agent import ToolSpec
from workers.tools.process import ToolProcess
process = ToolProcess.start({{"spin": ToolSpec(impl="{SAMPLE}SpinTool")}}, [], 30)
threading.Thread(target=process.call, args=("spin", {{}}, 60), daemon=True).start()
time.sleep(0.3)
print(process.pid, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def is_gone(pid: int) -> bool:
    """Exited (a zombie waiting for whoever adopted it counts as exited)."""
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (FileNotFoundError, ProcessLookupError):
        return True


def test_a_busy_tool_process_exits_when_its_worker_is_killed() -> None:
    worker = subprocess.run([sys.executable, "-c", WORKER_THAT_DIES], cwd=REPO, capture_output=True, text=True,
                            timeout=30, check=False)
    tool_pid = int(worker.stdout.strip())

    deadline = time.monotonic() + 5
    while not is_gone(tool_pid) and time.monotonic() < deadline:
        time.sleep(0.1)

    assert is_gone(tool_pid)


def test_a_tool_process_reports_its_tools_and_answers_one_call_at_a_time() -> None:
    process = ToolProcess.start({"echo": ToolSpec(impl=f"{SAMPLE}EchoTool")}, [], 30)
    try:
        first = process.call("echo", {"text": "one"}, 5)
        second = process.call("echo", {"text": "two"}, 5)
    finally:
        process.close()

    assert process.descriptions["echo"]["parameters"]["required"] == ["text"]
    assert (first.ok, first.result["echo"], second.result["echo"]) == (True, "one", "two")
    assert first.result["pid"] == process.pid
    assert is_gone(process.pid)
