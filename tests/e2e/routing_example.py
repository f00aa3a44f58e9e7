"""``config/examples/routing`` as the tests use it: copied with agent ids of the test's own, or with the
commented Anthropic variant switched on."""

from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import REPO

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
