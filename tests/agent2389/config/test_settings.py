"""Process settings from the environment: the switches of Celery's events and of progress events, the status
heartbeat."""

from __future__ import annotations

import pytest

from agent2389.celery_app import create_celery
from agent2389.config.settings import Settings
from agent2389.protocol.errors import ConfigError


@pytest.mark.parametrize(("value", "on"), [("", True), ("1", True), ("on", True), ("0", False), ("false", False)])
def test_celery_events_are_on_unless_the_environment_turns_them_off(value: str, on: bool) -> None:
    settings = Settings.from_env(None, {"AGENT2389_CELERY_EVENTS": value})
    conf = create_celery(settings).conf
    assert settings.celery_events is on
    assert conf.worker_send_task_events is on and conf.task_send_sent_event is on


def test_a_celery_events_value_that_is_no_switch_is_refused_by_name() -> None:
    with pytest.raises(ConfigError, match="AGENT2389_CELERY_EVENTS must be 1 or 0"):
        Settings.from_env(None, {"AGENT2389_CELERY_EVENTS": "sometimes"})


def test_statuses_are_refreshed_every_30_seconds_unless_the_environment_says_otherwise() -> None:
    assert Settings.from_env(None, environ={}).status_heartbeat_s == 30.0
    assert Settings.from_env(None, environ={"AGENT2389_STATUS_HEARTBEAT": "5"}).status_heartbeat_s == 5.0


@pytest.mark.parametrize("value", ["0", "-3", "nan", "100000"])
def test_a_status_heartbeat_out_of_range_is_refused_by_name(value: str) -> None:
    with pytest.raises(ConfigError, match="AGENT2389_STATUS_HEARTBEAT must be between 1 and 86400 seconds"):
        Settings.from_env(None, environ={"AGENT2389_STATUS_HEARTBEAT": value})


@pytest.mark.parametrize(("value", "on"), [("", True), ("1", True), ("0", False), ("off", False)])
def test_progress_events_are_on_unless_the_environment_turns_them_off(value: str, on: bool) -> None:
    assert Settings.from_env(None, {"AGENT2389_PROGRESS_EVENTS": value}).progress_events is on
