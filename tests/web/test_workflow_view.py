"""The dashboard's workflow view: a task of the recent tasks table opens a page with its hops in order."""

from __future__ import annotations

from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import quote

import pytest
from flask import Flask
from flask.testing import FlaskClient

from agent2389.config.settings import Settings
from tests.web.browser import chromium, run_chromium
from tests.web.conftest import System, web_app
from tests.web.test_dashboard_injection import Dom, payload
from tests.web.workflows import Hop, three_hop_workflow, visit

TOKEN = "workflow-view-token"


class Page(HTMLParser):
    """Links and the text of each table row, the way a reader of the page sees them."""

    def __init__(self, markup: str) -> None:
        super().__init__(convert_charrefs=True)
        self.links: dict[str, str] = {}
        self.rows: dict[str, list[list[str]]] = {}
        self.attrs: list[dict[str, str | None]] = []
        self._table: str | None = None
        self._href: str | None = None
        self._cell: list[str] | None = None
        self.feed(markup)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        self.attrs.append(values)
        if tag == "table":
            self._table = values.get("id") or ""
            self.rows[self._table] = []
        elif tag == "tr" and self._table is not None:
            self.rows[self._table].append([])
        elif tag == "td":
            self._cell = []
        elif tag == "a":
            self._href = values.get("href")

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._cell is not None and self._table is not None:
            self.rows[self._table][-1].append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "table":
            self._table = None
        elif tag == "a":
            self._href = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
        if self._href is not None:
            self.links[data.strip()] = self._href

    def body(self, table: str) -> list[list[str]]:
        return [row for row in self.rows.get(table, []) if row]


def test_the_recent_tasks_table_links_each_task_to_its_page_and_marks_workflows(client: FlaskClient,
                                                                                system: System) -> None:
    three_hop_workflow(system, "wf-linked")
    system.task("echo", "plain-task", 0.1)
    page = Page(client.get("/dashboard").get_data(as_text=True))
    assert page.links["wf-linked"] == "/dashboard/tasks/wf-linked"
    assert page.links["plain-task"] == "/dashboard/tasks/plain-task"
    agents = {row[1]: row[2] for row in page.body("tasks")}
    assert agents["wf-linked"] == "writer workflow, 3 hops" and agents["plain-task"] == "echo"


def test_a_workflows_page_shows_its_hops_visits_state_and_answer_size(client: FlaskClient, system: System) -> None:
    three_hop_workflow(system, "wf-page")
    response = client.get("/dashboard/tasks/wf-page")
    assert response.status_code == 200
    page = Page(response.get_data(as_text=True))
    hops = [row[:5] for row in page.body("hops")]
    assert hops == [["1", "researcher", "writer", "llm", "sources found; draft it"],
                    ["2", "writer", "reviewer", "agent", "draft ready for review"],
                    ["3", "reviewer", "writer", "llm", "fix the intro"],
                    ["-", "writer", "(answer)", "", "the draft is final"]]
    assert [row[5:] for row in page.body("hops")[:3]] == [["1.50 ms", "200 ms"], ["1.50 ms", "300 ms"],
                                                         ["1.50 ms", "100 ms"]]
    assert page.body("hops")[3][6] == "1234 bytes"
    assert [row[1:3] for row in page.body("visits")] == [["researcher", "completed"], ["writer", "completed"],
                                                         ["reviewer", "completed"], ["writer", "completed"]]
    text = response.get_data(as_text=True)
    assert "workflow completed" in text and "researcher → writer → reviewer → writer" in text
    assert "1234 bytes from writer" in text


def test_the_page_polls_its_own_fragment(client: FlaskClient, system: System) -> None:
    visit(system, "wf-poll", "researcher", 0.1, 0, Hop("writer", "draft it"))
    system.stats.task_event("wf-poll", "writer", "queued", conversation_id="conv-wf")
    page = Page(client.get("/dashboard/tasks/wf-poll").get_data(as_text=True))
    main = next(attrs for attrs in page.attrs if attrs.get("id") == "panels")
    assert main["data-source"] == "/dashboard/task-panel/wf-poll"
    fragment = client.get("/dashboard/task-panel/wf-poll")
    assert fragment.status_code == 200 and fragment.headers["Cache-Control"] == "no-store"
    assert "<html" not in fragment.get_data(as_text=True) and "workflow running" in fragment.get_data(as_text=True)


def test_an_unknown_task_is_a_404_page_that_says_so(client: FlaskClient) -> None:
    response = client.get("/dashboard/tasks/no-such-task")
    assert response.status_code == 404 and "No task no-such-task in the recent history" in response.get_data(
        as_text=True)
    assert client.get("/dashboard/tasks/" + "x" * 300).status_code == 404


def test_a_routing_reason_with_markup_is_shown_as_text(client: FlaskClient, system: System) -> None:
    visit(system, "wf-markup", "researcher", 0.1, 0, Hop("<img src=x onerror=alert(1)>", "<script>alert(1)</script>"))
    html = client.get("/dashboard/tasks/wf-markup").get_data(as_text=True)
    assert "<script>alert(1)" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


@pytest.fixture
def guarded(settings: Settings) -> Iterator[Flask]:
    yield from web_app(settings, TOKEN)


def test_with_a_token_set_the_workflow_view_asks_for_it(guarded: Flask, system: System) -> None:
    three_hop_workflow(system, "wf-guarded")
    client = guarded.test_client()
    page = client.get("/dashboard/tasks/wf-guarded")
    assert page.status_code == 401 and "sources found" not in page.get_data(as_text=True)
    assert client.get("/dashboard/task-panel/wf-guarded").status_code == 401
    headers = {"Authorization": f"Bearer {TOKEN}"}
    assert client.get("/dashboard/tasks/wf-guarded", headers=headers).status_code == 200


@pytest.mark.slow
def test_headless_chromium_opens_a_workflow_from_the_recent_tasks_table(served: str, system: System,
                                                                       tmp_path: Path) -> None:
    binary = chromium()
    system.healthy()
    three_hop_workflow(system, "wf-in-chromium")

    dashboard = run_chromium(binary, tmp_path / "profile-dashboard", "--dump-dom", f"{served}/dashboard")
    assert dashboard.returncode == 0, dashboard.stderr[-2000:]
    link = Page(dashboard.stdout).links["wf-in-chromium"]

    opened = run_chromium(binary, tmp_path / "profile-task", "--dump-dom", f"{served}{link}")
    assert opened.returncode == 0, opened.stderr[-2000:]
    page = Page(opened.stdout)
    assert any(attrs.get("data-refreshes") for attrs in page.attrs), "the page never polled its fragment"
    assert [row[1:3] for row in page.body("hops")] == [["researcher", "writer"], ["writer", "reviewer"],
                                                       ["reviewer", "writer"], ["writer", "(answer)"]]
    assert "workflow completed" in opened.stdout and "1234 bytes from writer" in opened.stdout


@pytest.mark.slow
def test_markup_in_a_workflows_routing_fields_runs_nothing_in_chromium(served: str, system: System,
                                                                       tmp_path: Path) -> None:
    binary = chromium()
    task_id = payload("task_id")
    system.stats.task_event(task_id, payload("from_agent"), "queued", conversation_id=payload("conversation_id"))
    system.stats.task_started(payload("from_agent"), task_id, "conv", 1)
    system.stats.task_event(task_id, payload("from_agent"), "routed", to_agent=payload("to_agent"),
                            reason=payload("reason"), strategy=payload("strategy"), decision_ms=1.0, step=1)
    system.stats.task_finished(payload("from_agent"), task_id, 0.1, None)
    result = run_chromium(binary, tmp_path / "profile", "--dump-dom",
                          f"{served}/dashboard/tasks/{quote(task_id, safe='')}")
    assert result.returncode == 0, result.stderr[-2000:]
    dom = Dom(result.stdout)
    assert any(attrs.get("data-refreshes") for _, attrs in dom.elements), "the page never polled its fragment"
    body = next(attrs for tag, attrs in dom.elements if tag == "body")
    assert "data-pwned" not in body, f"injected script ran, through {body['data-pwned']}"
    assert not any(name.startswith("on") for _, attrs in dom.elements for name in attrs)
    assert not any(tag in ("img", "svg") for tag, _ in dom.elements)
    shown = "\n".join(dom.text)
    for field in ("from_agent", "to_agent", "reason", "strategy", "task_id"):
        assert payload(field) in shown, f"{field} is not shown as the text it is"
