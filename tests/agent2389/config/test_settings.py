"""Process settings from the environment: names and their older aliases, checked values, the switches of
Celery's events and of progress events, the status heartbeat."""

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


NEW_AND_OLD = [("AGENT2389_REDIS_URL", "REDIS_URL", "redis://127.0.0.1:6390/2", "redis_url"),
               ("AGENT2389_LOG_LEVEL", "LOG_LEVEL", "DEBUG", "log_level"),
               ("AGENT2389_LOG_FORMAT", "LOG_FORMAT", "pretty", "log_format"),
               ("AGENT2389_WEB_PORT", "HEALTH_PORT", "9123", "web_port"),
               ("AGENT2389_WEB_AUTH_TOKEN", "WEB_AUTH_TOKEN", "a-long-web-token", "web_auth_token")]


@pytest.mark.parametrize(("new", "old", "value", "attribute"), NEW_AND_OLD)
def test_every_setting_is_read_from_its_agent2389_name_and_from_the_name_it_had_before(
    new: str, old: str, value: str, attribute: str
) -> None:
    expected = int(value) if attribute == "web_port" else value
    assert getattr(Settings.from_env(None, {new: value}), attribute) == expected
    assert getattr(Settings.from_env(None, {old: value}), attribute) == expected


@pytest.mark.parametrize(("new", "old", "value", "attribute"), NEW_AND_OLD)
def test_the_agent2389_name_wins_when_both_names_are_set(new: str, old: str, value: str, attribute: str) -> None:
    default = getattr(Settings(), attribute)
    other = {"redis_url": "redis://127.0.0.1:6391/0", "log_level": "ERROR", "log_format": "json",
             "web_port": "9124", "web_auth_token": "another-web-token"}[attribute]
    settings = Settings.from_env(None, {new: value, old: other})
    assert getattr(settings, attribute) == (int(value) if attribute == "web_port" else value) != default


def test_a_setting_set_to_the_empty_string_takes_its_default_or_its_older_name() -> None:
    assert Settings.from_env(None, {"AGENT2389_LOG_LEVEL": "", "AGENT2389_WEB_PORT": ""}) == Settings()
    assert Settings.from_env(None, {"AGENT2389_LOG_LEVEL": "", "LOG_LEVEL": "WARNING"}).log_level == "WARNING"


def test_log_level_and_format_are_read_in_any_case() -> None:
    settings = Settings.from_env(None, {"AGENT2389_LOG_LEVEL": "debug", "LOG_FORMAT": "Pretty"})
    assert (settings.log_level, settings.log_format) == ("DEBUG", "pretty")


@pytest.mark.parametrize(("variable", "value", "allowed"), [
    ("AGENT2389_LOG_LEVEL", "verbose", "DEBUG, INFO, WARNING, ERROR, CRITICAL"),
    ("LOG_LEVEL", "warn", "DEBUG, INFO, WARNING, ERROR, CRITICAL"),
    ("AGENT2389_LOG_FORMAT", "xml", "json, pretty"),
    ("LOG_FORMAT", "text", "json, pretty"),
])
def test_a_wrong_log_level_or_format_is_refused_naming_the_variable_and_what_it_may_be(
    variable: str, value: str, allowed: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        Settings.from_env(None, {variable: value})
    assert str(refused.value) == f"{variable} must be one of {allowed}, not {value!r}"


def test_a_bad_number_is_refused_naming_the_variable_that_holds_it() -> None:
    with pytest.raises(ConfigError, match="HEALTH_PORT must be a whole number, not 'eighty'"):
        Settings.from_env(None, {"HEALTH_PORT": "eighty"})
    with pytest.raises(ConfigError, match="AGENT2389_REVERIFY_INTERVAL must be a number, not 'often'"):
        Settings.from_env(None, {"AGENT2389_REVERIFY_INTERVAL": "often"})


@pytest.mark.parametrize(("value", "on"), [("", True), ("1", True), ("0", False), ("off", False)])
def test_progress_events_are_on_unless_the_environment_turns_them_off(value: str, on: bool) -> None:
    assert Settings.from_env(None, {"AGENT2389_PROGRESS_EVENTS": value}).progress_events is on
