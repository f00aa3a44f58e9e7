"""Markup that reaches the dashboard through anything a process recorded is shown as text and runs nothing.

Every value the dashboard shows was written to Redis by a bridge or worker quoting what an agent, a task,
a tool or an exception said. Here each such field carries markup that would run if it were rendered as
HTML (an inline handler that breaks out of a quoted attribute, an element with ``onerror``, a script
element); headless Chromium loads the page, lets it poll once, and the resulting DOM is inspected.
"""

from __future__ import annotations

import time
from html.parser import HTMLParser
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from agent2389.state.presence import WorkerInfo, write_bridge_state
from tests.web.browser import chromium, run_chromium
from tests.web.conftest import System
from web.headers import SECURITY_HEADERS


def payload(field: str) -> str:
    """Markup that, if parsed as HTML anywhere on the page, marks the body with the field's name."""
    mark = f"document.body.dataset.pwned='{field}'"
    return (f"{field}\" autofocus tabindex=1 onfocus=\"{mark}\" x='"
            f"><img src=/none onerror=\"{mark}\"><svg onload=\"{mark}\"><script>{mark}</script>")


# Each field the dashboard shows, and how many characters of it the page shows (some are cut).
FIELDS = {"agent_id": None, "agent_status_reason": None, "worker_id": None, "worker_host": None,
          "not_ready_reason": None, "task_id": 18, "conversation_id": 24, "error_code": None}


class Dom(HTMLParser):
    """What the browser ended up with: elements, their attributes, and all text and attribute values."""

    def __init__(self, markup: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(markup)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))
        self.text.extend(value for _, value in attrs if value)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def inject_everywhere(system: System) -> None:
    agent = payload("agent_id")
    bridge = system.bridge(agents=("echo", agent))
    bridge.agents[agent].update(status="unavailable", reason=payload("agent_status_reason"))
    write_bridge_state(system.client, system.keys, bridge, ttl_s=30)
    system.presence.heartbeat(WorkerInfo(
        worker_id=payload("worker_id"), host=payload("worker_host"), pid=4242, agents=["echo", agent],
        concurrency=2, started_at=time.time() - 30, not_ready={agent: payload("not_ready_reason")},
    ))
    system.task(agent, payload("task_id"), 0.2, error_code=payload("error_code"),
                conversation=payload("conversation_id"))


@pytest.mark.slow
def test_markup_in_every_operator_visible_field_renders_as_text_and_runs_nothing(
    served: str, system: System, tmp_path: Path
) -> None:
    binary = chromium()
    inject_everywhere(system)
    result = run_chromium(binary, tmp_path / "profile", "--dump-dom", f"{served}/dashboard")
    assert result.returncode == 0, result.stderr[-2000:]
    dom = Dom(result.stdout)
    assert any(attrs.get("data-refreshes") for _, attrs in dom.elements), "the page never polled its panels"

    body = next(attrs for tag, attrs in dom.elements if tag == "body")
    assert "data-pwned" not in body, f"injected script ran, through {body['data-pwned']}"
    handlers = [(tag, name) for tag, attrs in dom.elements for name in attrs if name.startswith("on")]
    assert handlers == [], f"injected event handlers became live markup: {handlers}"
    assert not any(tag in ("img", "svg") or "autofocus" in attrs for tag, attrs in dom.elements)
    assert [attrs.get("src") for tag, attrs in dom.elements if tag == "script"] == ["/dashboard/static/dashboard.js"]

    shown = "\n".join(dom.text)
    for field, cut in FIELDS.items():
        assert payload(field)[:cut] in shown, f"{field} is not shown as the text it is"


def test_every_response_carries_the_content_security_policy(client: FlaskClient, system: System) -> None:
    system.healthy()
    for path in ("/dashboard", "/dashboard/panels", "/health", "/api/workers", "/no-such-page"):
        headers = client.get(path).headers
        for name, value in SECURITY_HEADERS.items():
            assert headers[name] == value, (path, name)
    policy = SECURITY_HEADERS["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy and "unsafe-inline" not in policy
    assert SECURITY_HEADERS["X-Content-Type-Options"] == "nosniff"


def test_the_dashboard_has_no_inline_script_or_style_for_the_policy_to_block(client: FlaskClient,
                                                                           system: System) -> None:
    system.healthy()
    page = Dom(client.get("/dashboard").get_data(as_text=True))
    scripts = [attrs for tag, attrs in page.elements if tag == "script"]
    assert scripts and all(attrs.get("src") for attrs in scripts)
    assert not any("style" in attrs or any(n.startswith("on") for n in attrs) for _, attrs in page.elements)
    assert not any(tag == "style" for tag, _ in page.elements)


def test_a_not_ready_reason_that_closes_its_attribute_stays_inside_it(client: FlaskClient, system: System) -> None:
    system.worker("w1", agents=("echo",), not_ready={"echo": '" onfocus="alert(1)" autofocus x="'})
    markup = client.get("/dashboard/panels").get_data(as_text=True)
    badge = next(attrs for tag, attrs in Dom(markup).elements if attrs.get("class") == "badge unavailable")
    assert set(badge) == {"class", "title"}
    assert badge["title"] == 'echo: " onfocus="alert(1)" autofocus x="'
