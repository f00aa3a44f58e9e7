"""v2 workflows in end-to-end tests: ``config/examples/routing`` copied with agent ids of the test's own (or
with its commented Anthropic variant switched on), and a workflow read back from its task's timeline."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import redis

from agent2389.state.keys import Keys
from agent2389.state.registry import AgentRegistry
from tests.conftest import REPO
from tests.e2e.stack import wait_until
from web.inspection import timeline

EXAMPLE = REPO / "config" / "examples" / "routing"
ROLES = ("researcher", "writer", "reviewer")


def anthropic_variant(text: str) -> str:
    """The file with its ``[llm]`` echo lines replaced by the commented Anthropic lines under them."""
    lines = text.splitlines()
    out: list[str] = []
    uncommenting = False
    for line in lines:
        if line in ('provider = "echo"', 'model = "echo"'):
            continue
        if line.startswith("# With Claude instead"):
            uncommenting = True
            continue
        if uncommenting and line.startswith("# "):
            out.append(line[2:])
            continue
        uncommenting = False
        out.append(line)
    return "\n".join(out) + "\n"


def copy_example(target: Path, suffix: str, mqtt_url: str, anthropic: bool = False) -> dict[str, str]:
    """The example's agents in ``target``, each id (and every mention of one) ending in ``-suffix``."""
    target.mkdir(parents=True, exist_ok=True)
    ids = {role: f"{role}-{suffix}" for role in ROLES}
    for role in ROLES:
        text = (EXAMPLE / f"{role}.toml").read_text()
        if anthropic:
            text = anthropic_variant(text)
        text = re.sub(r'"(researcher|writer|reviewer)"', lambda m: f'"{ids[m.group(1)]}"', text)
        text = text.replace('"mqtt://localhost:1883"', f'"{mqtt_url}"')
        (target / f"{ids[role]}.toml").write_text(text)
    return ids


def completed_workflow(redis_url: str, key_prefix: str, task_id: str) -> dict[str, Any]:
    """The task's workflow as /api/tasks/<id> shows it, once the completion reached the timeline."""
    client = redis.Redis.from_url(redis_url)

    def completed() -> dict[str, Any] | None:
        flow = (timeline(client, Keys(key_prefix), task_id) or {}).get("workflow")
        return flow if flow and flow["state"] == "completed" else None

    try:
        found: dict[str, Any] = wait_until(completed, 10, "the timeline records the completion")
        return found
    finally:
        client.close()


def wait_routable(redis_url: str, key_prefix: str, agent_ids: list[str], timeout_s: float = 20) -> None:
    """Until the registry the workers route with lists every one of ``agent_ids`` as routable. The bridge
    feeds it from its own subscription to every status, so it may lag the status a peer already saw."""
    client = redis.Redis.from_url(redis_url)
    registry = AgentRegistry(client, Keys(key_prefix))
    try:
        wait_until(lambda: set(agent_ids) <= {r.agent_id for r in registry.routable()}, timeout_s,
                   f"{', '.join(agent_ids)} are routable in the registry")
    finally:
        client.close()
