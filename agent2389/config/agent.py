"""Typed agent configuration: the RFC's agent.toml (PROTOCOL.md §7) plus what a distributed agent needs.

Every section is documented, with its defaults, in docs/configuration.md. Models forbid unknown keys, so
a typo is an error at ``agent2389 validate`` time rather than a silently ignored setting.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from agent2389.config.mcp import MCP_IMPL, McpServerConfig
from agent2389.protocol.status import MAX_CAPABILITIES, MAX_CAPABILITY_CHARS
from agent2389.protocol.topics import AGENT_ID_PATTERN

BUILTIN_TOOLS = frozenset({"http_request", "file_read", "file_write", "web_search"})
LLM_PROVIDERS = ("anthropic", "echo", "openai")
PYTHON_IMPL_PREFIX = "python:"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AgentSection(_Section):
    id: str = Field(pattern=f"^{AGENT_ID_PATTERN.pattern}$")
    description: str = ""
    capabilities: list[str] = Field(default_factory=list)
    max_pipeline_depth: int = Field(default=16, ge=1, le=1024)
    max_message_bytes: int = Field(default=262144, ge=1024, le=16 * 1024 * 1024)

    @field_validator("capabilities")
    @classmethod
    def _capabilities_are_short_distinct_names(cls, names: list[str]) -> list[str]:
        # Other agents' registries keep at most this much of a status (agent2389.protocol.status).
        if len(names) > MAX_CAPABILITIES:
            raise ValueError(f"at most {MAX_CAPABILITIES} capabilities")
        for name in names:
            if not name.strip() or len(name) > MAX_CAPABILITY_CHARS or not name.isprintable():
                raise ValueError(f"capability {name[:40]!r} must be 1 to {MAX_CAPABILITY_CHARS} printable "
                                 "characters, not blank")
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"capabilities listed twice: {', '.join(map(repr, duplicates))}")
        return names


class MqttSection(_Section):
    broker_url: str = "mqtt://localhost:1883"
    username_env: str | None = None
    password_env: str | None = None
    protocol: Literal["5", "3.1.1"] = "5"
    ca_file: str | None = None
    keepalive_s: int = Field(default=30, ge=5, le=3600)

    @field_validator("broker_url")
    @classmethod
    def _broker_url_has_scheme_and_host(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
            raise ValueError("broker_url must start with mqtt:// or mqtts://")
        if not parts.hostname:
            raise ValueError("broker_url must name a host, e.g. mqtt://localhost:1883")
        if parts.username or parts.password:
            raise ValueError("broker_url must not carry credentials; use username_env and password_env")
        return value

    @property
    def host(self) -> str:
        return urlsplit(self.broker_url).hostname or "localhost"

    @property
    def tls(self) -> bool:
        return urlsplit(self.broker_url).scheme in ("mqtts", "ssl")

    @property
    def port(self) -> int:
        return urlsplit(self.broker_url).port or (8883 if self.tls else 1883)

    @property
    def connection_key(self) -> tuple[str, int, bool, str, str | None, str | None, str | None]:
        """Agents served by one bridge connection must agree on all of this."""
        return (self.host, self.port, self.tls, self.protocol, self.ca_file, self.username_env,
                self.password_env)


class PriceTable(_Section):
    """What one million tokens of each kind cost, in ``currency`` (Anthropic publishes these per model)."""

    currency: str = Field(default="USD", min_length=1, max_length=8)
    input_per_mtok: float = Field(ge=0)
    output_per_mtok: float = Field(ge=0)
    cache_write_per_mtok: float | None = Field(default=None, ge=0)  # default: input price x 1.25
    cache_read_per_mtok: float | None = Field(default=None, ge=0)  # default: input price x 0.1


class LlmSection(_Section):
    provider: Literal["anthropic", "echo", "openai"] = "anthropic"
    model: str = "claude-sonnet-5-5"
    api_key_env: str | None = "ANTHROPIC_API_KEY"
    system_prompt: str = "You are a helpful agent."
    temperature: float = Field(default=0.7, ge=0.0, le=2.0)
    max_tokens: int = Field(default=4000, ge=1, le=200_000)
    base_url: str | None = None
    timeout_s: float = Field(default=60.0, gt=0, le=3600)
    max_retries: int = Field(default=2, ge=0, le=10)
    delay_s: float = Field(default=0.0, ge=0, le=600)
    # Fleet-scale operation (docs/llm.md): Anthropic prompt caching, prices for cost accounting, and the
    # limits every worker shares through Redis.
    prompt_caching: bool = True
    price: PriceTable | None = None
    max_concurrency: int | None = Field(default=None, ge=1, le=100_000)
    requests_per_minute: int | None = Field(default=None, ge=1, le=10_000_000)
    input_tokens_per_minute: int | None = Field(default=None, ge=1, le=10_000_000_000)
    output_tokens_per_minute: int | None = Field(default=None, ge=1, le=10_000_000_000)
    # Agents that share an API key share its limits: give them the same scope (default: the agent's id).
    limit_scope: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]{1,128}$")
    daily_token_budget: int | None = Field(default=None, ge=1)


class BudgetSection(_Section):
    max_iterations: int = Field(default=10, ge=1, le=1000)
    max_tool_calls: int = Field(default=25, ge=0, le=10_000)


class ToolSpec(_Section):
    impl: str
    config: dict[str, Any] = Field(default_factory=dict)
    timeout_s: float = Field(default=30.0, gt=0, le=3600)
    retries: int = Field(default=2, ge=0, le=10)
    allow: list[str] | None = None  # MCP tools only: the server's tools the LLM may see (default: all)

    @field_validator("impl")
    @classmethod
    def _impl_is_known(cls, value: str) -> str:
        if value in ("builtin", MCP_IMPL):
            return value
        if value.startswith(PYTHON_IMPL_PREFIX):
            target = value.removeprefix(PYTHON_IMPL_PREFIX)
            module, _, attr = target.partition(":")
            if module and attr and all(p.isidentifier() for p in module.split(".")) and attr.isidentifier():
                return value
            raise ValueError("python tools are written python:package.module:ClassName")
        raise ValueError(f"unknown tool impl {value!r}; allowed: \"builtin\", \"mcp\" or "
                         "\"python:package.module:Class\"")

    @model_validator(mode="after")
    def _mcp_config_has_its_shape(self) -> ToolSpec:
        if self.impl == MCP_IMPL:
            McpServerConfig.parse(self.config)
        elif self.allow is not None:
            raise ValueError("allow is for MCP tools (impl = \"mcp\") only")
        return self

    def secret_env_names(self) -> list[str]:
        """The environment variables holding this tool's secrets (``*_env`` keys, an MCP server's env)."""
        names = [v for k, v in self.config.items() if k.endswith("_env") and isinstance(v, str)]
        if self.impl == MCP_IMPL:
            names += McpServerConfig.parse(self.config).env_names()
        return names


class FileToolConfig(BaseModel):
    """The ``config`` of the builtin ``file_read`` and ``file_write`` tools (docs/tools.md).

    The quotas bound what a model can do to its root: ``max_files`` (files and directories under it),
    ``max_depth`` (path components of one file), ``max_total_bytes`` (all regular files together).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    root: str | None = None
    create_root: bool = False
    create_dirs: bool = True
    max_bytes: int = Field(default=1024 * 1024, ge=1)
    max_files: int = Field(default=10_000, ge=1)
    max_depth: int = Field(default=16, ge=1, le=255)
    max_total_bytes: int = Field(default=100 * 1024 * 1024, ge=1)


FILE_TOOLS = frozenset({"file_read", "file_write"})


class RoutingLlm(_Section):
    model: str | None = Field(default=None, min_length=1)  # default: the agent's own [llm] model


class RoutingGatekeeper(_Section):
    url: str
    timeout_ms: int = Field(default=5000, ge=1, le=600_000)
    retry_attempts: int = Field(default=3, ge=0, le=10)

    @field_validator("url")
    @classmethod
    def _url_is_http(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("url must be an http:// or https:// URL with a host")
        if parts.username or parts.password:
            raise ValueError("url must not carry credentials")
        return value


class RoutingSection(_Section):
    """Dynamic routing of v2 envelopes (PROTOCOL.md §9, docs/routing.md)."""

    strategy: Literal["llm", "agent", "gatekeeper"]
    max_iterations: int = Field(default=10, ge=1, le=1000)
    allow: list[Annotated[str, StringConstraints(pattern=f"^{AGENT_ID_PATTERN.pattern}$")]] | None = None
    llm: RoutingLlm | None = None
    gatekeeper: RoutingGatekeeper | None = None

    @model_validator(mode="after")
    def _strategy_has_its_settings(self) -> RoutingSection:
        if self.strategy == "gatekeeper" and self.gatekeeper is None:
            raise ValueError('strategy "gatekeeper" needs a [routing.gatekeeper] section with its url')
        return self


class AgentConfig(_Section):
    agent: AgentSection
    mqtt: MqttSection = Field(default_factory=MqttSection)
    llm: LlmSection = Field(default_factory=LlmSection)
    budget: BudgetSection = Field(default_factory=BudgetSection)
    tools: dict[str, ToolSpec] = Field(default_factory=dict)
    routing: RoutingSection | None = None
    source: Path | None = Field(default=None, exclude=True)

    @field_validator("tools", mode="before")
    @classmethod
    def _tool_shorthand(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {name: {"impl": spec} if isinstance(spec, str) else spec for name, spec in value.items()}
        return value

    @field_validator("tools", mode="after")
    @classmethod
    def _builtin_tools_exist(cls, tools: dict[str, ToolSpec]) -> dict[str, ToolSpec]:
        unknown = [name for name, spec in tools.items() if spec.impl == "builtin" and name not in BUILTIN_TOOLS]
        if unknown:
            allowed = ", ".join(sorted(BUILTIN_TOOLS))
            raise ValueError(f"no builtin tool named {', '.join(map(repr, unknown))}; builtins are {allowed}")
        return tools

    @field_validator("tools", mode="after")
    @classmethod
    def _file_tool_configs_are_valid(cls, tools: dict[str, ToolSpec]) -> dict[str, ToolSpec]:
        for name, spec in tools.items():
            if spec.impl == "builtin" and name in FILE_TOOLS:
                try:
                    FileToolConfig.model_validate(spec.config)
                except ValidationError as exc:
                    problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
                    raise ValueError(f"tools.{name}.config: {problems}") from None
        return tools

    @property
    def id(self) -> str:
        return self.agent.id

    def referenced_env_vars(self) -> list[str]:
        names = [self.mqtt.username_env, self.mqtt.password_env]
        if self.llm.provider != "echo":
            names.append(self.llm.api_key_env)
        # Tools name their secrets the same way, e.g. web_search = { config = { api_key_env = "..." } }.
        names += [name for spec in self.tools.values() for name in spec.secret_env_names()]
        return [name for name in names if name]
