"""Turn a ``[tools]`` entry into a tool object: a builtin by name, or a class by import path.

Runs inside tool processes only, so custom tool code is never imported into a worker.
"""

from __future__ import annotations

import importlib
from typing import Any, cast

from agent2389.protocol.errors import ConfigError
from workers.tools.base import Tool

BUILTIN_IMPLS = {
    "http_request": "workers.tools.builtins.http_request:HttpRequestTool",
    "file_read": "workers.tools.builtins.files:FileReadTool",
    "file_write": "workers.tools.builtins.files:FileWriteTool",
    "web_search": "workers.tools.builtins.web_search:WebSearchTool",
}
PYTHON_PREFIX = "python:"
_REQUIRED_METHODS = ("describe", "initialize", "execute")


def load_tool(name: str, impl: str) -> Tool:
    """A new, not yet initialized instance of the tool ``impl`` names."""
    if impl == "builtin":
        if name not in BUILTIN_IMPLS:
            raise ConfigError(f"there is no builtin tool named {name!r}")
        target = BUILTIN_IMPLS[name]
    elif impl.startswith(PYTHON_PREFIX):
        target = impl.removeprefix(PYTHON_PREFIX)
    else:
        raise ConfigError(f"unknown tool impl {impl!r}")
    module_name, _, class_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"cannot import module {module_name!r} ({type(exc).__name__})") from exc
    cls: Any = getattr(module, class_name, None)
    if cls is None or not callable(cls):
        raise ConfigError(f"module {module_name!r} has no class {class_name!r}")
    tool = cls()
    missing = [method for method in _REQUIRED_METHODS if not callable(getattr(tool, method, None))]
    if missing:
        raise ConfigError(f"{class_name} is not a tool: it lacks {', '.join(m + '()' for m in missing)}")
    return cast(Tool, tool)
