import logging

import pytest

import web.app
from agent2389.config.settings import Settings
from web.app import warn_when_exposed


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "", "web.internal"])
def test_no_token_on_a_non_loopback_address_is_a_warning_at_start_up(
    caplog: pytest.LogCaptureFixture, settings: Settings, host: str
) -> None:
    with caplog.at_level(logging.WARNING, logger="agent2389.web"):
        assert warn_when_exposed(settings, host)
    assert "AGENT2389_WEB_AUTH_TOKEN is not set" in caplog.text and "--host 127.0.0.1" in caplog.text


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"])
def test_a_loopback_address_or_a_token_needs_no_warning(
    caplog: pytest.LogCaptureFixture, settings: Settings, host: str
) -> None:
    guarded = Settings(agents=settings.agents, redis_url=settings.redis_url, web_auth_token="t0ken-for-test")
    with caplog.at_level(logging.WARNING, logger="agent2389.web"):
        assert not warn_when_exposed(settings, host)
        assert not warn_when_exposed(guarded, "0.0.0.0")
    assert caplog.text == ""


def test_making_the_server_is_where_the_warning_is_given(caplog: pytest.LogCaptureFixture, settings: Settings,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    bound: list[str] = []
    # Nothing is bound: the test never listens beyond loopback.
    monkeypatch.setattr(web.app, "create_server", lambda app, host, **_: bound.append(host))
    with caplog.at_level(logging.WARNING, logger="agent2389.web"):
        web.app.make_server(settings, 8080, host="0.0.0.0")
    assert bound == ["0.0.0.0"] and "AGENT2389_WEB_AUTH_TOKEN is not set" in caplog.text
