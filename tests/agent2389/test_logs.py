import io
import json
import logging
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest

from agent2389.logs import JsonFormatter, PrettyFormatter, flush_logs, setup_logging, span, write_logs_in_background


def record(message: str, **fields: object) -> logging.LogRecord:
    rec = logging.LogRecord("agent2389.bridge.mqtt", logging.ERROR, __file__, 1, message, None, None)
    rec.fields = fields
    return rec


def test_json_lines_carry_timestamp_level_target_and_fields() -> None:
    line = json.loads(JsonFormatter().format(record("done", duration_ms=12)))
    assert line["level"] == "ERROR" and line["target"] == "agent2389.bridge.mqtt"
    assert line["fields"] == {"message": "done", "duration_ms": 12}
    assert line["timestamp"].endswith("Z") and "span" not in line


def test_lines_written_inside_a_task_span_carry_the_span() -> None:
    with span("task_processing", task_id="t1", agent_id="a", conversation_id="c"):
        line = json.loads(JsonFormatter().format(record("x")))
    assert line["span"] == {"name": "task_processing", "task_id": "t1", "agent_id": "a", "conversation_id": "c"}


def test_registered_secrets_never_reach_a_log_line(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging("INFO", "json", secrets=["sk-very-secret-value"])
    try:
        raise RuntimeError("bad key sk-very-secret-value")
    except RuntimeError:
        logging.getLogger("t").exception("calling with sk-very-secret-value failed")
    setup_logging("INFO", "json", secrets=[])
    written = capsys.readouterr().err
    assert "calling with [redacted] failed" in written
    assert "sk-very-secret-value" not in written


def test_the_pretty_format_is_one_readable_line() -> None:
    text = PrettyFormatter().format(record("hello", duration_ms=3))
    assert "ERROR" in text and "hello" in text and "duration_ms=3" in text and "\n" not in text


def test_the_http_clients_of_the_llm_sdk_write_no_line_per_request_at_info() -> None:
    setup_logging("INFO", "json")
    for name in ("httpx", "httpx2", "httpcore2"):
        assert not logging.getLogger(name).isEnabledFor(logging.INFO), name
    assert logging.getLogger("httpx2").isEnabledFor(logging.WARNING)


@pytest.fixture
def root_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    flush_logs()
    root.handlers[:], root.level = handlers, level


class HeldStream(io.StringIO):
    """A stderr whose writes wait until the test lets them through."""

    def __init__(self) -> None:
        super().__init__()
        self.open = threading.Event()

    def write(self, text: str) -> int:
        assert self.open.wait(10), "the stream was never let through"
        return super().write(text)


def test_a_thread_of_a_process_that_writes_in_the_background_goes_on_while_the_stream_is_slow(root_logging: None,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    stream = HeldStream()
    monkeypatch.setattr(sys, "stderr", stream)
    setup_logging("INFO", "json")
    write_logs_in_background()
    logged = threading.Thread(target=lambda: [logging.getLogger("t").info("line %d", i) for i in range(3)])
    logged.start()
    logged.join(5)
    assert not logged.is_alive(), "logging waited for the stream"
    stream.open.set()
    flush_logs()
    assert [json.loads(line)["fields"]["message"] for line in stream.getvalue().splitlines()] == [
        "line 0", "line 1", "line 2"]


@pytest.fixture
def written_in_background(root_logging: None, monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    """What a process that logs JSON through the background writer writes to stderr."""
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    setup_logging("INFO", "json")
    write_logs_in_background()
    return stream


def test_a_line_written_later_keeps_the_span_of_the_thread_that_logged_it(written_in_background: io.StringIO) -> None:
    with span("task_processing", task_id="t1") as current:
        logging.getLogger("t").info("inside")
        current["task_id"] = "changed after the line was logged"
    logging.getLogger("t").info("outside")
    flush_logs()
    inside, outside = (json.loads(line) for line in written_in_background.getvalue().splitlines())
    assert inside["span"] == {"name": "task_processing", "task_id": "t1"}
    assert "span" not in outside


def test_asking_twice_for_a_background_writer_keeps_writing_every_line(written_in_background: io.StringIO) -> None:
    logging.getLogger("t").info("before")
    write_logs_in_background()
    logging.getLogger("t").info("after")
    flush_logs()
    lines = written_in_background.getvalue().splitlines()
    assert [json.loads(line)["fields"]["message"] for line in lines] == ["before", "after"]


@pytest.mark.parametrize("ending", ["sys.exit(0)", "flush_logs(); os._exit(0)"])
def test_every_line_queued_before_the_process_ends_is_written(ending: str) -> None:
    program = ("import logging, os, sys\n"
               "from agent2389.logs import flush_logs, setup_logging, write_logs_in_background\n"
               "setup_logging('INFO', 'json')\n"
               "write_logs_in_background()\n"
               "for i in range(2000): logging.getLogger('t').info('line %d', i)\n"
               f"{ending}\n")
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60, check=True)
    assert [json.loads(line)["fields"]["message"] for line in result.stderr.splitlines()] == [
        f"line {i}" for i in range(2000)]
