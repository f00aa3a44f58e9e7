import json
import logging

import pytest

from agent2389.logs import JsonFormatter, PrettyFormatter, setup_logging, span


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
    assert "sk-very-secret-value" not in capsys.readouterr().err


def test_the_pretty_format_is_one_readable_line() -> None:
    text = PrettyFormatter().format(record("hello", duration_ms=3))
    assert "ERROR" in text and "hello" in text and "duration_ms=3" in text and "\n" not in text


def test_the_http_clients_of_the_llm_sdk_write_no_line_per_request_at_info() -> None:
    setup_logging("INFO", "json")
    for name in ("httpx", "httpx2", "httpcore2"):
        assert not logging.getLogger(name).isEnabledFor(logging.INFO), name
    assert logging.getLogger("httpx2").isEnabledFor(logging.WARNING)
