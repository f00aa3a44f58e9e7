from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from agent2389.config.settings import Settings
from tests.services import free_port
from tests.web.browser import WINDOW, chromium, run_chromium
from tests.web.conftest import System, web_app
from tests.web.png import decode
from web.app import create_app
from web.auth import COOKIE

TOKEN = "dashboard-token-123"
HEALTHY_GREEN = (0x1F, 0x9D, 0x55)


def test_the_dashboard_renders_workers_queues_agents_and_recent_tasks(client: FlaskClient, system: System) -> None:
    system.healthy()
    system.worker("w-busy", agents=("echo",), active=3, processed=41, llm_waiting=9)
    system.worker("w-calm", agents=("echo",), active=1)
    system.queue("writer", 7)
    system.task("echo", "task-123", 0.42)
    html = client.get("/dashboard").get_data(as_text=True)
    assert "system healthy" in html
    assert "w-busy" in html and "host-w-busy" in html and "3/4" in html
    assert html.count("LLM waiting</span>") == 1 and "9 LLM waiting" in html  # only the worker holding calls back
    assert "agent.writer" in html and ">7<" in html
    assert "task-123" in html and "420 ms" in html and "completed" in html
    assert "dashboard.js" in html


def test_the_panels_fragment_is_what_the_page_polls(client: FlaskClient, system: System) -> None:
    system.healthy()
    response = client.get("/dashboard/panels")
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    assert "<html" not in response.get_data(as_text=True) and "id=\"workers\"" in response.get_data(as_text=True)


def test_the_dashboard_lists_every_agent_on_the_broker_foreign_ones_marked(client: FlaskClient,
                                                                             system: System) -> None:
    system.healthy()
    system.status("echo", ours=True, capabilities=["echo"], load=0.5)
    system.status("rust-agent", capabilities=["search", "rust"], load=0.25,
                  description="<script>alert(1)</script>")
    html = client.get("/dashboard").get_data(as_text=True)
    registry = html[html.index('id="registry"'):]
    registry = registry[:registry.index("</table>")]
    rows = registry.split("<tr class=")[1:]
    assert [row.split("<td>")[1].split("</td>")[0] for row in rows] == ["echo", "rust-agent"]
    assert '"foreign"' in rows[1] and 'badge foreign' in rows[1] and "search, rust" in rows[1] and "0.25" in rows[1]
    assert '"ours"' in rows[0] and "badge foreign" not in rows[0] and "0.50" in rows[0]
    assert "&lt;script&gt;" in rows[1] and "<script>alert" not in html
    agents_table = html[html.index('id="agents"'):html.index('id="registry"')]
    assert "rust-agent" not in agents_table  # no task numbers of another deployment's agent


def test_content_from_redis_is_escaped(client: FlaskClient, system: System) -> None:
    system.task("echo", "<img src=x onerror=alert(1)>", 0.1, conversation="<script>alert(1)</script>")
    html = client.get("/dashboard").get_data(as_text=True)
    assert "<script>alert(1)" not in html and "<img src=x" not in html
    assert "&lt;script&gt;" in html


def test_a_redis_outage_shows_on_the_dashboard_instead_of_an_error(settings: Settings) -> None:
    dead = Settings(agents=settings.agents, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    response = create_app(dead).test_client().get("/dashboard")
    assert response.status_code == 200
    assert "system unhealthy" in response.get_data(as_text=True)
    assert "Redis did not answer" in response.get_data(as_text=True)


@pytest.fixture
def guarded(settings: Settings) -> Iterator[Flask]:
    yield from web_app(settings, TOKEN)


def test_with_a_token_set_the_dashboard_asks_for_it(guarded: Flask) -> None:
    client = guarded.test_client()
    page = client.get("/dashboard")
    assert page.status_code == 401 and 'name="token"' in page.get_data(as_text=True)
    assert client.get("/dashboard/panels").status_code == 401
    wrong = client.get("/dashboard?token=nope")
    assert wrong.status_code == 401 and "not right" in wrong.get_data(as_text=True)


def test_the_right_token_opens_a_session_without_keeping_the_token_anywhere(guarded: Flask, system: System) -> None:
    system.healthy()
    client = guarded.test_client()
    response = client.get(f"/dashboard?token={TOKEN}")
    assert response.status_code == 302 and response.headers["Location"] == "/dashboard"
    cookie = response.headers["Set-Cookie"]
    assert TOKEN not in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert client.get("/dashboard").status_code == 200
    assert client.get("/dashboard/panels").status_code == 200
    assert client.get("/api/workers").status_code == 200
    client.set_cookie(COOKIE, "forged")
    assert client.get("/dashboard/panels").status_code == 401


@pytest.mark.slow
def test_headless_chromium_shows_live_workers_and_tasks_and_keeps_polling(
    served: str, system: System, tmp_path: Path
) -> None:
    binary = chromium()
    system.healthy()
    system.worker("worker-two", agents=("echo",), active=1, processed=17)
    for i in range(6):
        system.task("echo", f"screenshot-task-{i}", 0.1 * (i + 1), model="claude-test")
    system.task("writer", "screenshot-failure", 0.3, error_code="llm_error")
    system.stats.task_started("writer", "screenshot-running", "conv-2", 1)
    system.status("foreign-rust-agent", capabilities=["search"], load=0.3)

    dom = run_chromium(binary, tmp_path / "profile-dom", "--dump-dom", f"{served}/dashboard")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert "worker-two" in dom.stdout and "screenshot-task-5" in dom.stdout and "screenshot-running" in dom.stdout
    assert "foreign-rust-agent" in dom.stdout and 'class="badge foreign"' in dom.stdout
    assert 'data-refreshes="' in dom.stdout, "the page never replaced its panels with a polled copy"

    # Fresh heartbeats: on a loaded machine the first browser run can outlast the ones written above, and the
    # page would rightly show the system degraded.
    system.healthy()
    system.beating("w1")
    shot = tmp_path / "dashboard.png"
    result = run_chromium(binary, tmp_path / "profile-shot", f"--screenshot={shot}", f"{served}/dashboard")
    assert result.returncode == 0 and shot.exists(), result.stderr[-2000:]
    image = decode(shot.read_bytes())
    assert (image.width, image.height) == WINDOW
    assert image.count(HEALTHY_GREEN) > 2000, "the green 'system healthy' badge is missing"
    assert len({image.pixel(x, y) for x in range(0, image.width, 7) for y in range(0, image.height, 7)}) > 20
