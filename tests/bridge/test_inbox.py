"""The inbox between an agent's MQTT link and its dispatcher."""

from __future__ import annotations

import paho.mqtt.client as paho

from bridge.inbox import BATCH_MAX, Inbox


def message(mid: int) -> paho.MQTTMessage:
    return paho.MQTTMessage(mid, b"/control/agents/a/input")


def test_a_backlog_is_taken_in_order_at_most_a_batch_at_a_time() -> None:
    inbox = Inbox()
    for mid in range(BATCH_MAX + 3):
        inbox.put(message(mid))
    first, closed = inbox.take()
    second, _ = inbox.take()
    assert [m.mid for m in first] == list(range(BATCH_MAX)) and not closed
    assert [m.mid for m in second] == [BATCH_MAX, BATCH_MAX + 1, BATCH_MAX + 2]


def test_closing_hands_over_what_came_before_and_says_it_is_closed() -> None:
    inbox = Inbox()
    inbox.put(message(1))
    inbox.close()
    taken, closed = inbox.take()
    assert [m.mid for m in taken] == [1] and closed
