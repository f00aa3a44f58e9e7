"""docker-compose.yml, checked without a Docker engine: the Compose Specification's schema and our rules."""

from __future__ import annotations

import copy
import json
import re
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml

from agent2389.celery_app import SOFT_SHUTDOWN_S
from agent2389.config.files import inspect_config
from agent2389.ops.cli import build_parser
from tests.deploy.conftest import load_yaml, repo_path, require_tool, seconds

SCHEMA = json.loads((Path(__file__).parent / "schemas" / "compose-spec.json").read_text(encoding="utf-8"))
AGENT2389_SERVICES = ("bridge", "worker", "web")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_yaml(repo_path("docker-compose.yml"))  # type: ignore[no-any-return]


def mount(volume: str) -> tuple[str, str]:
    """``source:target[:mode]`` as (source, target)."""
    source, target, *_ = volume.split(":")
    return source, target


def schema_errors(document: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft7Validator(SCHEMA)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(document)]


def test_the_compose_file_follows_the_compose_specification(compose: dict[str, Any]) -> None:
    assert schema_errors(compose) == []


def test_the_schema_check_rejects_a_misspelt_key(compose: dict[str, Any]) -> None:
    broken = copy.deepcopy(compose)
    broken["services"]["worker"]["stop_grace_perod"] = "60s"
    assert any("stop_grace_perod" in error for error in schema_errors(broken))


def test_every_service_the_issue_names_is_there(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"mqtt-broker", "redis", "bridge", "worker", "web", "flower", "prometheus", "grafana"} <= set(services)
    assert services["prometheus"]["profiles"] == ["monitoring"] and services["grafana"]["profiles"] == ["monitoring"]


def test_every_file_the_compose_file_mounts_or_builds_from_exists(compose: dict[str, Any]) -> None:
    missing = []
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source, _ = mount(volume)
            if source.startswith("./") and not repo_path(source).exists():
                missing.append(f"{name}: {source}")
        build = service.get("build")
        if build is not None:
            context = repo_path(build["context"] if isinstance(build, dict) else build)
            dockerfile = build.get("dockerfile", "Dockerfile") if isinstance(build, dict) else "Dockerfile"
            if not (context / dockerfile).is_file():
                missing.append(f"{name}: {context / dockerfile}")
    assert missing == []


def test_the_worker_can_be_scaled_and_stops_after_its_soft_shutdown(compose: dict[str, Any]) -> None:
    worker = compose["services"]["worker"]
    assert "container_name" not in worker, "container_name would make `--scale worker=N` fail"
    assert seconds(worker["stop_grace_period"]) > SOFT_SHUTDOWN_S


def test_the_bridge_is_never_replicated(compose: dict[str, Any]) -> None:
    bridge = compose["services"]["bridge"]
    assert bridge.get("scale", 1) == 1 and bridge.get("deploy", {}).get("replicas", 1) == 1


def test_every_service_has_a_health_check_and_waits_for_healthy_dependencies(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, service in services.items():
        assert service.get("healthcheck", {}).get("test"), f"{name} has no health check"
        for dependency, condition in service.get("depends_on", {}).items():
            assert dependency in services, f"{name} depends on an unknown service {dependency}"
            assert condition == {"condition": "service_healthy"}, f"{name} -> {dependency}"


def test_redis_never_evicts_celery_messages(compose: dict[str, Any]) -> None:
    command = compose["services"]["redis"]["command"]
    assert command[command.index("--maxmemory-policy") + 1] == "noeviction"


def test_agent2389_commands_and_health_checks_are_valid_command_lines(compose: dict[str, Any]) -> None:
    parser = build_parser()
    for name in AGENT2389_SERVICES:
        service = compose["services"][name]
        assert service["command"][0] == name
        parser.parse_args(service["command"])
        test = service["healthcheck"]["test"]
        assert test[:3] == ["CMD", "agent2389", "health"]
        parser.parse_args(test[2:])


def test_the_api_key_passes_through_from_the_environment_and_is_never_written_down(compose: dict[str, Any]) -> None:
    for name in AGENT2389_SERVICES:
        environment = compose["services"][name]["environment"]
        assert "ANTHROPIC_API_KEY" in environment and environment["ANTHROPIC_API_KEY"] is None


def test_the_mounted_agent_files_validate_and_use_the_compose_service_names(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in AGENT2389_SERVICES:
        assert "./config/deploy:/etc/agent2389:ro" in services[name]["volumes"]
        assert "--config" in services[name]["command"] and "/etc/agent2389" in services[name]["command"]
        assert urlsplit(services[name]["environment"]["REDIS_URL"]).hostname in services
    report = inspect_config(repo_path("config/deploy"), environ={"ANTHROPIC_API_KEY": "x"})
    assert report.errors == [] and report.agents
    assert {agent.mqtt.host for agent in report.agents} == {"mqtt-broker"}


def interpolate(value: str, environ: dict[str, str]) -> str:
    """Compose's ``${NAME}`` and ``${NAME:-default}``, as both Compose v1 and v2 read them."""
    return re.sub(r"\$\{(\w+)(?::-([^}]*))?\}", lambda m: environ.get(m[1]) or m[2] or "", value)


def published(compose: dict[str, Any], environ: dict[str, str]) -> dict[str, list[tuple[str, str, str]]]:
    """Each service's published ports as (host address, host port, container port)."""
    return {name: [tuple(interpolate(port, environ).split(":")) for port in service.get("ports", [])]
            for name, service in compose["services"].items()}


def test_every_published_port_listens_on_loopback_unless_told_otherwise(compose: dict[str, Any]) -> None:
    tls = load_yaml(repo_path("docker-compose.tls.yml"))
    for ports in [*published(compose, {}).values(), *published(tls, {}).values()]:
        assert ports == [] or {address for address, _, _ in ports} == {"127.0.0.1"}, ports


def test_publish_address_opens_the_broker_and_web_app_but_never_redis_or_prometheus(compose: dict[str, Any]) -> None:
    opened = published(compose, {"PUBLISH_ADDRESS": "0.0.0.0"})
    assert opened["mqtt-broker"] == [("0.0.0.0", "1883", "1883")]
    assert opened["web"] == [("0.0.0.0", "8080", "8080")]
    assert opened["redis"] == [("127.0.0.1", "6379", "6379")]
    assert opened["prometheus"] == [("127.0.0.1", "9090", "9090")]


def test_the_web_app_is_published_on_port_8080(compose: dict[str, Any]) -> None:
    web = compose["services"]["web"]
    assert published(compose, {})["web"] == [("127.0.0.1", "8080", "8080")]
    assert published(compose, {"WEB_HOST_PORT": "18080"})["web"] == [("127.0.0.1", "18080", "8080")]
    assert web["command"][web["command"].index("--port") + 1] == "8080"


def test_there_is_no_top_level_name_which_compose_v1_refuses(compose: dict[str, Any]) -> None:
    assert "name" not in compose


def test_prometheus_scrapes_the_web_service_and_loads_our_alerts(compose: dict[str, Any]) -> None:
    config = load_yaml(repo_path("config/prometheus/prometheus.yml"))
    targets = [t for job in config["scrape_configs"] for c in job["static_configs"] for t in c["targets"]]
    assert targets == ["web:8080"]
    mounts = compose["services"]["prometheus"]["volumes"]
    assert "./config/prometheus/alerts.yml:/etc/prometheus/alerts.yml:ro" in mounts
    assert config["rule_files"] == ["/etc/prometheus/alerts.yml"]


def test_grafana_is_provisioned_with_the_prometheus_datasource_and_our_dashboard(compose: dict[str, Any]) -> None:
    datasource = load_yaml(repo_path("config/grafana/provisioning/datasources/prometheus.yml"))["datasources"][0]
    assert urlsplit(datasource["url"]).hostname in compose["services"]
    provider = load_yaml(repo_path("config/grafana/provisioning/dashboards/agent2389.yml"))["providers"][0]
    mounts = dict(mount(volume) for volume in compose["services"]["grafana"]["volumes"])
    dashboard_target = mounts["./config/grafana/agent2389-dashboard.json"]
    assert Path(dashboard_target).parent == Path(provider["options"]["path"])


def test_the_tls_override_mounts_certificates_where_broker_and_agents_expect_them() -> None:
    override = load_yaml(repo_path("docker-compose.tls.yml"))
    assert schema_errors(override) == []
    broker_mounts = dict(mount(volume) for volume in override["services"]["mqtt-broker"]["volumes"])
    conf_source = next(source for source, target in broker_mounts.items() if target.endswith("mosquitto.conf"))
    conf = repo_path(conf_source).read_text(encoding="utf-8")
    wanted = {line.split()[1] for line in conf.splitlines() if line.split()[:1] in (["certfile"], ["keyfile"])}
    assert wanted <= set(broker_mounts.values())
    for name in AGENT2389_SERVICES:
        mounts = dict(mount(volume) for volume in override["services"][name]["volumes"])
        agents_dir = next(source for source, target in mounts.items() if target == "/etc/agent2389")
        report = inspect_config(repo_path(agents_dir), environ={})
        assert report.errors == [] and {a.mqtt.tls for a in report.agents} == {True}
        assert {a.mqtt.ca_file for a in report.agents} <= set(mounts.values())
        # certs/ is made by scripts/generate-certs.sh; everything else must be in the repository
        assert all(repo_path(source).exists() for source in mounts if not source.startswith("./certs/"))


def test_the_prometheus_config_passes_promtool_with_our_alert_rules(tmp_path: Path) -> None:
    promtool = require_tool("promtool", "Prometheus configuration is checked with promtool (Debian: prometheus)")
    config = load_yaml(repo_path("config/prometheus/prometheus.yml"))
    config["rule_files"] = [str(repo_path("config/prometheus/alerts.yml"))]  # where compose mounts it
    checked = tmp_path / "prometheus.yml"
    checked.write_text(yaml.safe_dump(config), encoding="utf-8")
    result = subprocess.run([promtool, "check", "config", str(checked)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_optional_deploy_agents_validate_and_use_the_broker_service() -> None:
    report = inspect_config(repo_path("config/deploy/available"), environ={"ANTHROPIC_API_KEY": "x"})
    assert report.errors == [] and report.agents
    assert {agent.mqtt.host for agent in report.agents} == {"mqtt-broker"}


def test_the_deploy_tests_override_changes_only_the_agents_folder() -> None:
    override = load_yaml(Path(__file__).parent / "stack" / "docker-compose.test.yml")
    for name, service in override["services"].items():
        assert list(service) == ["volumes"], name
        assert [mount(volume)[1] for volume in service["volumes"]] == ["/etc/agent2389"]


def test_the_password_override_switches_broker_and_agents_to_the_generated_login() -> None:
    override = load_yaml(repo_path("docker-compose.auth.yml"))
    assert schema_errors(override) == []
    broker = override["services"]["mqtt-broker"]
    mounts = dict(mount(interpolate(volume, {})) for volume in broker["volumes"])
    conf = repo_path(next(source for source, target in mounts.items() if target.endswith("mosquitto.conf")))
    settings = [line.split() for line in conf.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert ["allow_anonymous", "false"] in settings and ["password_file", mounts["./mqtt-auth/passwd"]] in settings
    # the health check uses the one anonymous listener, which is on the broker's own loopback
    health_port = broker["healthcheck"]["test"][broker["healthcheck"]["test"].index("-p") + 1]
    assert ["listener", health_port, "127.0.0.1"] in settings
    for name in AGENT2389_SERVICES:
        service = override["services"][name]
        assert interpolate(service["env_file"], {}) == "./mqtt-auth/agents.env"
        agents_dir = next(source for source, target in map(mount, service["volumes"]) if target == "/etc/agent2389")
        login = {"MQTT_USERNAME": "u", "MQTT_PASSWORD": "p"}
        report = inspect_config(repo_path(agents_dir), environ=login)
        assert report.errors == [] and report.agents
        assert {(a.mqtt.username_env, a.mqtt.password_env) for a in report.agents} == {tuple(login)}
        assert {a.mqtt.host for a in report.agents} == {"mqtt-broker"}
