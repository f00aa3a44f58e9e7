"""Load agent files from a path and describe every problem in them the way a person can fix it."""

from __future__ import annotations

import difflib
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args

from pydantic import BaseModel, ValidationError

from agent2389.config.agent import AgentConfig, ToolSpec
from agent2389.protocol.errors import ConfigError


@dataclass(frozen=True)
class Problem:
    file: str
    key: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}: {self.key}" if self.key else self.file
        return f"{where}: {self.message}"


@dataclass
class LoadReport:
    agents: list[AgentConfig] = field(default_factory=list)
    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)


def load_agents(path: str | Path) -> list[AgentConfig]:
    """All agents under ``path``, or ConfigError listing every problem."""
    report = inspect_config(path)
    if report.errors:
        raise ConfigError("invalid configuration:\n" + "\n".join(f"  {p}" for p in report.errors))
    return report.agents


def inspect_config(path: str | Path, environ: dict[str, str] | None = None) -> LoadReport:
    env = dict(os.environ) if environ is None else environ
    report = LoadReport()
    files = _agent_files(Path(path), report)
    for file in files:
        agent = _load_file(file, report)
        if agent is not None:
            report.agents.append(agent)
            for name in agent.referenced_env_vars():
                if name not in env:
                    report.warnings.append(
                        Problem(str(file), "", f"environment variable {name} is not set (needed at run time)")
                    )
    _check_across_files(report)
    return report


def _agent_files(path: Path, report: LoadReport) -> list[Path]:
    if path.is_dir():
        files = sorted(p for p in path.glob("*.toml") if p.is_file())
        if not files:
            report.errors.append(Problem(str(path), "", "directory holds no agent files (*.toml)"))
        return files
    if path.is_file():
        return [path]
    report.errors.append(Problem(str(path), "", "no such file or directory"))
    return []


def _load_file(file: Path, report: LoadReport) -> AgentConfig | None:
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        report.errors.append(Problem(str(file), "", f"TOML syntax error: {exc}"))
        return None
    except (OSError, UnicodeDecodeError) as exc:
        report.errors.append(Problem(str(file), "", f"cannot read file: {exc.__class__.__name__}"))
        return None
    try:
        return AgentConfig.model_validate({**data, "source": file})
    except ValidationError as exc:
        report.errors.extend(Problem(str(file), *_describe(err, data)) for err in exc.errors())
        return None


def _check_across_files(report: LoadReport) -> None:
    seen: dict[str, AgentConfig] = {}
    for agent in report.agents:
        if agent.id in seen:
            first = seen[agent.id].source
            report.errors.append(
                Problem(str(agent.source), "agent.id", f"duplicate agent id {agent.id!r} (also in {first})")
            )
        seen.setdefault(agent.id, agent)
    keys = {agent.mqtt.connection_key for agent in report.agents}
    if len(keys) > 1:
        report.errors.append(
            Problem("", "mqtt", "all agents served together must use the same broker, protocol and credentials")
        )


def _describe(err: Any, data: dict[str, Any]) -> tuple[str, str]:
    loc = [str(part) for part in err["loc"]]
    key = ".".join(loc)
    kind = err["type"]
    if kind == "missing":
        if len(loc) == 1:
            return key, f"missing section [{key}]"
        return key, "missing required key"
    if kind == "extra_forbidden":
        allowed = _allowed_keys(loc[:-1])
        hint = difflib.get_close_matches(loc[-1], allowed, n=1)
        suggestion = f"; did you mean {hint[0]!r}?" if hint else ""
        return key, f"unknown key{suggestion} (allowed: {', '.join(allowed)})"
    if key == "agent.id":
        return key, "agent id must match [a-zA-Z0-9._-]+ (letters, digits, '.', '_', '-')"
    message = str(err["msg"]).removeprefix("Value error, ")
    if kind not in ("value_error", "assertion_error") and "input" in err:
        message += f" (got {_short(err['input'])})"
    return key, message


def _allowed_keys(loc: list[str]) -> list[str]:
    """The keys of the section at ``loc`` (``["routing", "gatekeeper"]``, ``["tools", "name"]``)."""
    model: type[BaseModel] = AgentConfig
    if len(loc) == 2 and loc[0] == "tools":
        model = ToolSpec
    else:
        for part in loc:
            found = _section_model(model.model_fields.get(part))
            if found is None:
                break
            model = found
    return [name for name in model.model_fields if name != "source"]


def _section_model(field_info: Any) -> type[BaseModel] | None:
    """The model of a section field, also when it is optional (``RoutingSection | None``)."""
    annotation = getattr(field_info, "annotation", None)
    for candidate in (annotation, *get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
