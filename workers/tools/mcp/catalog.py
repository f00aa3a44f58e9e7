"""What one MCP server offers the LLM: its allowed tools, under names every provider accepts."""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from mcp_types import Tool

log = logging.getLogger("agent2389.tools.mcp")
PROVIDER_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
SEPARATOR = "__"


@dataclass(frozen=True)
class OfferedTool:
    entry: str
    mcp_name: str
    description: str
    parameters: dict[str, Any]
    validator: Draft202012Validator


def exposed_name(entry: str, mcp_name: str) -> str:
    """``{entry}__{mcp_name}``; names the providers would refuse (other characters, over 64) are made
    valid and given a hash of the original, so they stay stable and distinct."""
    name = f"{entry}{SEPARATOR}{mcp_name}"
    if PROVIDER_NAME.match(name):
        return name
    digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:8]
    cleaned = re.sub(r"[^a-zA-Z0-9_-]", "_", name)[: 64 - len(digest) - 1]
    return f"{cleaned}_{digest}"


def build_catalog(entry: str, tools: Iterable[Tool], allow: list[str] | None) -> dict[str, OfferedTool]:
    offered: dict[str, OfferedTool] = {}
    for tool in tools:
        if allow is not None and tool.name not in allow:
            continue
        schema = dict(tool.input_schema)
        try:
            if schema.get("type") != "object":
                raise SchemaError("it must be a JSON Schema with \"type\": \"object\"")
            Draft202012Validator.check_schema(schema)
        except SchemaError as exc:
            log.warning("MCP tool %s of %s left out: its input schema is invalid (%s)", tool.name, entry, exc.message)
            continue
        description = tool.description or tool.title or tool.name
        offered[exposed_name(entry, tool.name)] = OfferedTool(entry, tool.name, description, schema,
                                                              Draft202012Validator(schema))
    return offered
