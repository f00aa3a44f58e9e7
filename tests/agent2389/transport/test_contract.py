"""The private kombu and Celery names agent2389's transport relies on are still there, as they were.

Each name here is listed, with why, in agent2389/transport/__init__.py. A kombu or Celery upgrade that
renames one or changes its parameters fails this test instead of changing how tasks are delivered.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Iterator

import celery.apps.worker
import celery.worker.control
import kombu.transport.virtual
import pytest
import redis
from celery import Celery
from celery.worker import state as worker_state
from kombu import Connection
from kombu.transport import redis as kombu_redis

import agent2389.transport
from agent2389.celery_app import TRANSPORT
from agent2389.transport import layout

# (owner, method, the parameter names it must take, in order, after self)
METHODS = [
    (kombu_redis.QoS, "append", ["message", "delivery_tag"]),
    (kombu_redis.QoS, "ack", ["delivery_tag"]),
    (kombu_redis.QoS, "restore_visible", ["start", "num", "interval"]),
    (kombu_redis.QoS, "pipe_or_acquire", ["pipe", "client"]),
    (kombu_redis.QoS, "_remove_from_indices", ["delivery_tag", "pipe"]),
    (kombu.transport.virtual.QoS, "append", ["message", "delivery_tag"]),
    (kombu.transport.virtual.QoS, "ack", ["delivery_tag"]),
    (kombu.transport.virtual.QoS, "can_consume_max_estimate", []),
    (kombu_redis.Channel, "close", []),
    (kombu_redis.Channel, "conn_or_acquire", ["client"]),
    (kombu_redis.Channel, "_create_client", ["asynchronous"]),
    (kombu_redis.Channel, "_brpop_read", ["options"]),
    (kombu_redis.Channel, "_q_for_pri", ["queue", "pri"]),
    (kombu_redis.Channel, "_put", ["queue", "message", "kwargs"]),
    (kombu_redis.Channel, "_get_message_priority", ["message", "reverse"]),
    (kombu_redis.Channel, "_do_restore_message", ["payload", "exchange", "routing_key", "pipe", "leftmost"]),
    (kombu_redis.Channel, "_purge", ["queue"]),
    (kombu_redis.Channel, "_delete", ["queue", "exchange", "routing_key", "pattern", "args", "kwargs"]),
    (kombu.transport.virtual.Transport, "_deliver", ["message", "queue"]),
    (kombu.transport.virtual.Channel, "basic_consume", ["queue", "no_ack", "callback", "consumer_tag", "kwargs"]),
    (kombu_redis.PublishBatch, "add", ["name", "args"]),
    (celery.apps.worker, "safe_say", ["msg", "f"]),
    (celery.worker.control, "revoke", ["state", "task_id", "terminate", "signal", "kwargs"]),
    (celery.worker.control, "nok", ["value"]),
]

CLASS_ATTRIBUTES = [
    (kombu_redis.Channel, ["QoS", "do_restore", "pool", "active_queues", "global_keyprefix", "visibility_timeout",
                           "_closing"]),
    (kombu_redis.QoS, ["unacked_key", "unacked_index_key", "visibility_timeout"]),
    (kombu_redis.Transport, ["Channel"]),
]


def parameters(function: object) -> list[str]:
    return [name for name in inspect.signature(function).parameters if name != "self"]  # type: ignore[arg-type]


@pytest.mark.parametrize(("owner", "name", "expected"), METHODS,
                         ids=[f"{owner.__name__}.{name}" for owner, name, _ in METHODS])
def test_every_private_method_the_transport_overrides_or_calls_takes_the_same_parameters(
    owner: type, name: str, expected: list[str]
) -> None:
    assert parameters(getattr(owner, name)) == expected


@pytest.mark.parametrize(("owner", "names"), CLASS_ATTRIBUTES, ids=[o.__name__ for o, _ in CLASS_ATTRIBUTES])
def test_every_private_attribute_the_transport_reads_is_still_defined(owner: type, names: list[str]) -> None:
    missing = [name for name in names if not hasattr(owner, name)]
    assert missing == []


def test_kombu_keeps_its_keys_where_our_scripts_and_readers_look_for_them() -> None:
    assert kombu_redis.Channel.sep == layout.PRIORITY_SEP
    assert tuple(kombu_redis.Channel.priority_steps) == layout.PRIORITY_STEPS
    assert kombu_redis.Channel.unacked_key == layout.UNACKED
    assert kombu_redis.Channel.unacked_index_key == layout.UNACKED_INDEX


def test_a_connection_on_our_transport_shows_its_url_as_redis_for_flower(redis_url: str) -> None:
    connection = Connection(redis_url, transport=TRANSPORT)
    assert isinstance(Connection.resolve_aliases, dict)
    assert connection.as_uri().startswith("redis://")
    assert connection.transport_cls == TRANSPORT


def test_celery_still_tracks_a_workers_requests_where_lease_renewal_reads_them() -> None:
    assert hasattr(worker_state, "active_requests")
    assert hasattr(worker_state, "reserved_requests")


@pytest.fixture
def plain_kombu(redis_url: str, key_prefix: str) -> Iterator[Connection]:
    """kombu's own Redis transport, not ours: the layout our scripts assume is kombu's, so test kombu's."""
    connection = Connection(redis_url, transport_options={"global_keyprefix": f"{key_prefix}:"})
    yield connection
    connection.close()


def test_kombu_records_a_received_message_in_the_layout_our_scripts_read_and_write(
    plain_kombu: Connection, redis_client: redis.Redis, key_prefix: str
) -> None:
    queue = plain_kombu.SimpleQueue("contract")
    queue.put({"n": 1}, priority=9)
    [waiting] = redis_client.lrange(f"{key_prefix}:contract{layout.PRIORITY_SEP}9", 0, -1)
    pushed = json.loads(waiting)
    tag = pushed["properties"]["delivery_tag"]
    assert {"exchange", "routing_key"} <= set(pushed["properties"]["delivery_info"])
    message = queue.get(timeout=5)
    assert message._raw == pushed
    payload, exchange, routing_key = json.loads(redis_client.hget(f"{key_prefix}:{layout.UNACKED}", tag))
    assert payload == pushed
    assert (exchange, routing_key) == (pushed["properties"]["delivery_info"]["exchange"],
                                       pushed["properties"]["delivery_info"]["routing_key"])
    assert redis_client.zscore(f"{key_prefix}:{layout.UNACKED_INDEX}", tag) is not None
    qos = plain_kombu.default_channel.qos
    assert hasattr(qos, "_vrestore_count")
    assert hasattr(plain_kombu.default_channel, "_queue_cycle")
    assert hasattr(plain_kombu.default_channel, "_active_queues")
    assert hasattr(plain_kombu.default_channel, "_qos")
    assert hasattr(plain_kombu.transport, "client")
    message.ack()


DISPATCHER_ATTRIBUTES = ["hostname", "pid", "clock", "exchange", "serializer", "headers", "delivery_mode"]


def test_celery_still_hands_send_task_an_event_dispatcher_and_its_dispatcher_has_what_a_batch_needs() -> None:
    app = Celery("contract", set_as_current=False)
    assert "event_dispatcher" in inspect.signature(app.amqp.send_task_message).parameters
    dispatcher = app.events.Dispatcher(enabled=False, buffer_while_offline=False)
    assert [name for name in DISPATCHER_ATTRIBUTES if not hasattr(dispatcher, name)] == []


def test_the_package_docstring_lists_every_name_this_test_checks() -> None:
    documented = agent2389.transport.__doc__ or ""
    checked = [name for _, name, _ in METHODS] + [n for _, names in CLASS_ATTRIBUTES for n in names]
    checked += ["resolve_aliases", "_vrestore_count", "_queue_cycle", "_active_queues", "_qos", "_raw",
                "active_requests", "reserved_requests", "send_task_message", "event_dispatcher",
                *DISPATCHER_ATTRIBUTES]
    assert [name for name in checked if name not in documented] == []
