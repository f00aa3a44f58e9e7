"""The run clears the retained `unavailable` statuses it left on the shared broker, and only those."""

from __future__ import annotations

from tests import leftover_statuses
from tests.bridge.status_listener import StatusListener


def test_only_unavailable_statuses_retained_since_the_snapshot_are_cleared(mqtt_url: str, unique_id: str) -> None:
    listener = StatusListener(mqtt_url)
    older, stopped, running = (f"{name}-{unique_id}" for name in ("older", "stopped", "running"))
    try:
        listener.publish(older, {"agent_id": older, "status": "unavailable"})
        before = leftover_statuses.retained_statuses(mqtt_url)
        assert before is not None and f"/control/agents/{older}/status" in before
        listener.publish(stopped, {"agent_id": stopped, "status": "unavailable"})
        listener.publish(running, {"agent_id": running, "status": "available"})

        # Only this test's agents: a test beside it in the run may be looking at a status it left.
        assert leftover_statuses.clear_new_unavailable(mqtt_url, before, containing=unique_id) == 1

        after = leftover_statuses.retained_statuses(mqtt_url)
        assert after is not None
        assert f"/control/agents/{stopped}/status" not in after
        assert {f"/control/agents/{older}/status", f"/control/agents/{running}/status"} <= set(after)
    finally:
        for agent_id in (older, stopped, running):
            listener.publish(agent_id, b"")
        listener.close()


def test_an_unreachable_broker_gives_no_snapshot() -> None:
    assert leftover_statuses.retained_statuses("mqtt://127.0.0.1:9") is None
