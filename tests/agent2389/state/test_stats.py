import json
import threading
import time

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from agent2389.state.keys import Keys
from agent2389.state.stats import DURATION_WINDOW, IN_FLIGHT_STALE_S, StatsRecorder, bucket_label
from agent2389.state.stats_batch import StatsBatch
from agent2389.state.timeline import TaskEvent
from tests.services import free_port


@pytest.fixture
def keys(key_prefix: str) -> Keys:
    return Keys(key_prefix)


@pytest.fixture
def stats(redis_client: redis.Redis, keys: Keys) -> StatsRecorder:
    return StatsRecorder(redis_client, keys)


def test_bucket_labels_are_the_smallest_bound_that_holds_the_duration() -> None:
    assert bucket_label(0.001) == "0.005"
    assert bucket_label(0.005) == "0.005"
    assert bucket_label(0.3) == "0.5"
    assert bucket_label(10_000) == "+Inf"


def test_received_rejected_and_finished_tasks_are_counted_per_agent(
    stats: StatsRecorder, redis_client: redis.Redis, keys: Keys
) -> None:
    stats.task_received("a")
    stats.task_received("a")
    stats.task_rejected("a", "invalid_json")
    stats.task_started("a", "t1", "c1", 1)
    stats.task_finished("a", "t1", 0.25, None)
    stats.task_started("a", "t2", "c1", 1)
    stats.task_finished("a", "t2", 2.0, "llm_error")
    counters = redis_client.hgetall(keys.agent_stats("a"))
    assert counters["tasks_received"] == "2"
    assert counters["tasks_rejected"] == "1" and counters["rejected_invalid_json"] == "1"
    assert counters["tasks_completed"] == "1" and counters["tasks_failed"] == "1"
    assert counters["failed_llm_error"] == "1"
    assert float(counters["duration_seconds_sum"]) == pytest.approx(2.25)
    assert redis_client.hgetall(keys.histogram("a")) == {"0.25": "1", "2.5": "1"}
    assert redis_client.lrange(keys.durations("a"), 0, -1) == ["2000.0", "250.0"]
    assert redis_client.smembers(keys.agents_index()) == {"a"}


def test_the_durations_window_keeps_only_the_latest_entries(
    stats: StatsRecorder, redis_client: redis.Redis, keys: Keys
) -> None:
    pipe = redis_client.pipeline()
    pipe.rpush(keys.durations("a"), *([1.0] * DURATION_WINDOW))
    pipe.execute()
    stats.task_finished("a", "t", 0.5, None)
    window = redis_client.lrange(keys.durations("a"), 0, -1)
    assert len(window) == DURATION_WINDOW and window[0] == "500.0"


def test_tasks_in_flight_are_tracked_and_the_peak_is_kept_per_agent_and_for_the_system(
    stats: StatsRecorder, redis_client: redis.Redis, keys: Keys
) -> None:
    stats.task_started("a", "t1", "c", 3)
    stats.task_started("a", "t2", "c", 1)
    stats.task_started("b", "t3", "c", 1)
    assert redis_client.zcard(keys.in_flight()) == 3
    stats.task_finished("a", "t1", 0.1, None)
    stats.task_finished("a", "t2", 0.1, None)
    assert redis_client.zrange(keys.in_flight(), 0, -1) == ["b:t3"]
    assert redis_client.hget(keys.agent_stats("a"), "max_pipeline_depth_reached") == "2"
    assert redis_client.hget(keys.agent_stats("b"), "max_pipeline_depth_reached") == "1"
    assert redis_client.hget(keys.system_stats(), "max_pipeline_depth_reached") == "3"
    assert redis_client.hget(keys.agent_stats("a"), "max_task_depth") == "3"


def test_a_task_started_twice_after_a_redelivery_is_in_flight_once(
    stats: StatsRecorder, redis_client: redis.Redis, keys: Keys
) -> None:
    stats.task_started("a", "t1", "c", 1)
    stats.task_started("a", "t1", "c", 1)
    assert redis_client.zcard(keys.in_flight()) == 1
    stats.task_finished("a", "t1", 0.1, None)
    assert redis_client.zcard(keys.in_flight()) == 0


def test_in_flight_marks_older_than_any_task_can_run_are_dropped(
    stats: StatsRecorder, redis_client: redis.Redis, keys: Keys
) -> None:
    redis_client.zadd(keys.in_flight(), {"a:lost": time.time() - IN_FLIGHT_STALE_S - 60})
    stats.task_started("a", "t1", "c", 1)
    assert redis_client.zrange(keys.in_flight(), 0, -1) == ["a:t1"]


def test_finished_tasks_are_counted_per_minute_with_an_expiry(
    stats: StatsRecorder, redis_client: redis.Redis, keys: Keys
) -> None:
    minute = int(time.time() // 60)
    stats.task_finished("a", "t1", 0.1, None)
    stats.task_finished("a", "t2", 0.1, "tool_execution_failed")
    counts = {"completed": 0, "failed": 0}
    for key in (keys.minute_stats("a", minute), keys.minute_stats("a", minute + 1)):  # a minute may turn meanwhile
        for name, value in redis_client.hgetall(key).items():
            counts[name] += int(value)
            assert 0 < redis_client.ttl(key) <= 2 * 3600
    assert counts == {"completed": 1, "failed": 1}


def test_tool_and_llm_calls_are_counted_indexed_and_join_the_task_timeline(
    stats: StatsRecorder, redis_client: redis.Redis, keys: Keys
) -> None:
    stats.tool_call("a", "http_request", 0.2, "ok", task_id="t1")
    stats.tool_call("a", "http_request", 1.0, "timeout", task_id="t1", error="timed out after 1 s")
    stats.llm_call("a", "claude-x", 0.5, 100, 20, True, task_id="t1")
    tool = redis_client.hgetall(keys.tool_stats("a", "http_request"))
    assert (tool["executions"], tool["failures"], tool["timeouts"]) == ("2", "1", "1")
    llm = redis_client.hgetall(keys.llm_stats("a", "claude-x"))
    assert (llm["calls"], llm["input_tokens"], llm["output_tokens"]) == ("1", "100", "20")
    assert redis_client.smembers(keys.tools_index("a")) == {"http_request"}
    assert redis_client.smembers(keys.models_index("a")) == {"claude-x"}
    events = [json.loads(e) for e in redis_client.lrange(keys.task_timeline("t1"), 0, -1)]
    assert [e["event"] for e in events] == ["tool_call", "tool_call", "llm_call"]
    assert events[1]["outcome"] == "timeout" and events[1]["error"] == "timed out after 1 s"
    assert "error" not in events[0]


def test_every_event_of_a_task_goes_to_its_timeline_and_the_recent_tasks(
    stats: StatsRecorder, redis_client: redis.Redis, keys: Keys
) -> None:
    stats.task_received("a", "t1", "conv")
    stats.task_event("t1", "a", TaskEvent.QUEUED, celery_id="x")
    stats.task_started("a", "t1", "conv", 2)
    stats.task_finished("a", "t1", 0.3, "llm_error", message="the model refused")
    events = [json.loads(e) for e in redis_client.lrange(keys.task_timeline("t1"), 0, -1)]
    assert [e["event"] for e in events] == ["received", "queued", "started", "failed"]
    assert events[-1]["error_code"] == "llm_error" and events[-1]["message"] == "the model refused"
    assert redis_client.ttl(keys.task_timeline("t1")) > 0
    assert redis_client.zrange(keys.recent_tasks(), 0, -1) == ["t1"]


def test_mqtt_publishes_and_their_failures_are_counted(
    stats: StatsRecorder, redis_client: redis.Redis, keys: Keys
) -> None:
    stats.mqtt_published()
    stats.mqtt_published(3)
    stats.mqtt_published(failed=True)
    assert redis_client.hgetall(keys.mqtt_stats()) == {"messages_published": "4", "publish_failures": "1"}


def test_recording_while_redis_is_down_loses_the_numbers_but_never_raises(keys: Keys) -> None:
    dead = redis.Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))
    stats = StatsRecorder(dead, keys)
    stats.task_received("a")
    stats.task_started("a", "t1", "c", 1)
    stats.task_finished("a", "t1", 0.1, None)
    stats.tool_call("a", "x", 0.1, "ok")


def test_background_recording_writes_every_call_in_order_once_flushed(redis_client: redis.Redis, keys: Keys) -> None:
    stats = StatsRecorder(redis_client, keys, background=True)
    for n in range(50):
        stats.task_started("a", f"t{n}", "c", 1)
        stats.task_finished("a", f"t{n}", 0.01, None)
    assert stats.flush(5)
    assert redis_client.hget(keys.agent_stats("a"), "tasks_completed") == "50"
    assert redis_client.zcard(keys.in_flight()) == 0
    events = [json.loads(e)["event"] for e in redis_client.lrange(keys.task_timeline("t7"), 0, -1)]
    assert events == ["started", "completed"]


def test_a_background_event_carries_the_time_it_happened_not_the_time_it_was_written(
        redis_client: redis.Redis, keys: Keys) -> None:
    stats = StatsRecorder(redis_client, keys, background=True)
    writer_busy = threading.Event()
    stats._run(lambda batch: writer_busy.wait(10))  # holds the writer, as a slow Redis would
    stats.task_event("t1", "a", TaskEvent.QUEUED)
    happened = time.time()
    while time.time() < happened + 0.3:  # let the write come measurably later than the event
        writer_busy.wait(0.05)
    writer_busy.set()
    assert stats.flush(5)
    [entry] = [json.loads(e) for e in redis_client.lrange(keys.task_timeline("t1"), 0, -1)]
    assert entry["at"] <= happened


def test_background_recording_while_redis_is_down_never_blocks_the_caller(keys: Keys) -> None:
    dead = redis.Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))
    stats = StatsRecorder(dead, keys, background=True)
    started = time.monotonic()
    for n in range(100):
        stats.task_finished("a", f"t{n}", 0.1, None)
    assert time.monotonic() - started < 0.5
    assert stats.flush(5)


def test_the_peak_in_flight_is_kept_when_tasks_start_and_finish_within_one_batch(
    redis_client: redis.Redis, keys: Keys
) -> None:
    stats = StatsRecorder(redis_client, keys, background=True)
    stats.task_started("a", "a1", "c", 1)
    stats.task_started("a", "a2", "c", 4)
    stats.task_started("b", "b1", "c", 2)
    stats.task_finished("a", "a1", 0.1, None)
    stats.task_started("a", "a3", "c", 1)
    stats.task_finished("b", "b1", 0.1, None)
    stats.task_started("b", "b2", "c", 1)
    assert stats.flush(5)
    assert set(redis_client.zrange(keys.in_flight(), 0, -1)) == {"a:a2", "a:a3", "b:b2"}
    assert redis_client.hget(keys.agent_stats("a"), "max_pipeline_depth_reached") == "2"
    assert redis_client.hget(keys.agent_stats("b"), "max_pipeline_depth_reached") == "1"
    assert redis_client.hget(keys.system_stats(), "max_pipeline_depth_reached") == "3"
    assert redis_client.hget(keys.agent_stats("a"), "max_task_depth") == "4"
    assert redis_client.hget(keys.agent_stats("a"), "tasks_started") == "3"


def test_a_peak_reached_earlier_is_never_lowered(stats: StatsRecorder, redis_client: redis.Redis, keys: Keys) -> None:
    redis_client.hset(keys.agent_stats("a"), mapping={"max_pipeline_depth_reached": 7, "max_task_depth": 9})
    redis_client.hset(keys.system_stats(), "max_pipeline_depth_reached", 8)
    stats.task_started("a", "t1", "c", 2)
    assert redis_client.hget(keys.agent_stats("a"), "max_pipeline_depth_reached") == "7"
    assert redis_client.hget(keys.agent_stats("a"), "max_task_depth") == "9"
    assert redis_client.hget(keys.system_stats(), "max_pipeline_depth_reached") == "8"


class CommandCounter:
    """Stands in for a redis-py pipeline and counts the commands queued on it."""

    def __init__(self) -> None:
        self.commands = 0

    def __getattr__(self, name: str) -> object:
        def command(*args: object, **kwargs: object) -> None:
            self.commands += 1

        return command


def test_a_batch_of_many_tasks_costs_two_commands_per_task_and_a_few_more(keys: Keys) -> None:
    stats, batch = StatsRecorder.__new__(StatsRecorder), StatsBatch()
    stats._keys, stats._owner = keys, "host:1"
    stats._run = lambda record: record(batch)  # type: ignore[method-assign]
    for n in range(50):
        stats.task_received("a")
        stats.task_event(f"t{n}", "a", TaskEvent.QUEUED, celery_id="x")
        stats.task_started("a", f"t{n}", "c", 1)
        stats.task_finished("a", f"t{n}", 0.01, None)
        stats.mqtt_published()
    pipe = CommandCounter()
    batch.write(pipe)
    # Each task's timeline is a key of its own (RPUSH and EXPIRE); everything else is shared.
    assert pipe.commands <= 2 * 50 + 25
