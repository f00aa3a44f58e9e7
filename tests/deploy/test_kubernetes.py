"""k8s/: rendered with `kubectl kustomize`, validated against the Kubernetes schemas, checked against our rules."""

from __future__ import annotations

import copy
import re
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import yaml

from agent2389.celery_app import SOFT_SHUTDOWN_S
from agent2389.config.files import inspect_config
from agent2389.ops.cli import build_parser
from tests.conftest import REPO
from tests.deploy.conftest import load_yaml, load_yaml_documents, repo_path, require_tool

# Every manifest against the Kubernetes schemas of several versions.
pytestmark = pytest.mark.slow

# The oldest Kubernetes still commonly run, and the newest the schemas know.
KUBERNETES_VERSIONS = ("1.29.0", kubernetes_validate.utils.latest_version())
CLUSTER_SCOPED = {"Namespace"}


def kustomize(directory: str) -> list[dict[str, Any]]:
    kubectl = require_tool("kubectl", "the Kubernetes manifests are rendered with `kubectl kustomize`")
    result = subprocess.run([kubectl, "kustomize", directory], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return load_yaml_documents(result.stdout)


@pytest.fixture(scope="module")
def manifests() -> list[dict[str, Any]]:
    return kustomize("k8s")


def find(manifests: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    matches = [m for m in manifests if m["kind"] == kind and m["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind}/{name}: {len(matches)} found"
    return matches[0]


def of_kind(manifests: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [m for m in manifests if m["kind"] == kind]


def pod_spec(deployment: dict[str, Any]) -> dict[str, Any]:
    return deployment["spec"]["template"]["spec"]  # type: ignore[no-any-return]


def matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_manifest_validates_strictly_against_the_kubernetes_schemas(
    manifests: list[dict[str, Any]], version: str
) -> None:
    for manifest in manifests:
        kubernetes_validate.validate(manifest, version, strict=True)


def test_strict_validation_rejects_a_misspelt_field(manifests: list[dict[str, Any]]) -> None:
    broken = copy.deepcopy(find(manifests, "Deployment", "worker"))
    pod_spec(broken)["terminationGracePeriodSecond"] = 60
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSIONS[-1], strict=True)


def test_everything_lives_in_the_agent2389_namespace(manifests: list[dict[str, Any]]) -> None:
    assert find(manifests, "Namespace", "agent2389")
    for manifest in manifests:
        if manifest["kind"] not in CLUSTER_SCOPED:
            assert manifest["metadata"].get("namespace") == "agent2389", manifest["metadata"]["name"]


def test_there_is_a_deployment_and_service_for_each_process(manifests: list[dict[str, Any]]) -> None:
    assert {d["metadata"]["name"] for d in of_kind(manifests, "Deployment")} == {
        "bridge", "worker", "web", "mqtt-broker", "redis"
    }
    assert {s["metadata"]["name"] for s in of_kind(manifests, "Service")} == {"web", "mqtt-broker", "redis"}


def test_the_bridge_is_a_singleton_that_is_replaced_not_rolled(manifests: list[dict[str, Any]]) -> None:
    bridge = find(manifests, "Deployment", "bridge")
    assert bridge["spec"]["replicas"] == 1 and bridge["spec"]["strategy"] == {"type": "Recreate"}


def test_agent_pods_carry_the_label_the_runbook_selects(manifests: list[dict[str, Any]]) -> None:
    for name in ("bridge", "worker", "web"):
        labels = find(manifests, "Deployment", name)["spec"]["template"]["metadata"]["labels"]
        assert labels["app"] == "agent" and labels["component"] == name


def test_workers_get_longer_than_the_soft_shutdown_to_stop(manifests: list[dict[str, Any]]) -> None:
    assert pod_spec(find(manifests, "Deployment", "worker"))["terminationGracePeriodSeconds"] > SOFT_SHUTDOWN_S


def test_every_container_has_resource_requests_and_limits_and_runs_unprivileged(
    manifests: list[dict[str, Any]],
) -> None:
    for deployment in of_kind(manifests, "Deployment"):
        spec = pod_spec(deployment)
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        for container in spec["containers"]:
            resources = container["resources"]
            assert set(resources["requests"]) == set(resources["limits"]) == {"cpu", "memory"}, container["name"]
            assert container["securityContext"]["allowPrivilegeEscalation"] is False
            assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}


def test_the_web_app_is_probed_on_live_and_ready(manifests: list[dict[str, Any]]) -> None:
    container = pod_spec(find(manifests, "Deployment", "web"))["containers"][0]
    assert container["livenessProbe"]["httpGet"]["path"] == "/live"
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert find(manifests, "Service", "web")["spec"]["publishNotReadyAddresses"] is True


def test_agent2389_containers_run_valid_commands_and_probes(manifests: list[dict[str, Any]]) -> None:
    parser = build_parser()
    for name in ("bridge", "worker", "web"):
        container = pod_spec(find(manifests, "Deployment", name))["containers"][0]
        assert container["image"].split(":")[0] == "agent2389" and container["args"][0] == name
        parser.parse_args(container["args"])
        probe = container["readinessProbe"].get("exec", {}).get("command")
        if probe:
            assert probe[:2] == ["agent2389", "health"]
            parser.parse_args(probe[1:])


def test_the_api_key_comes_from_a_secret_and_the_echo_agent_runs_without_it(manifests: list[dict[str, Any]]) -> None:
    env = {e["name"]: e for e in pod_spec(find(manifests, "Deployment", "worker"))["containers"][0]["env"]}
    reference = env["ANTHROPIC_API_KEY"]["valueFrom"]["secretKeyRef"]
    assert reference["name"] == "agent2389-secrets" and reference["optional"] is True
    assert "value" not in env["ANTHROPIC_API_KEY"]


def test_the_agent_config_map_holds_every_deploy_agent_file_and_they_validate(
    manifests: list[dict[str, Any]], tmp_path: Path
) -> None:
    data = find(manifests, "ConfigMap", "agent-config")["data"]
    files = {p.name: p.read_text(encoding="utf-8") for p in repo_path("config/deploy").glob("*.toml")}
    assert data == files
    for name, text in data.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    report = inspect_config(tmp_path, environ={})
    assert report.errors == []
    services = {s["metadata"]["name"] for s in of_kind(manifests, "Service")}
    assert {agent.mqtt.host for agent in report.agents} <= services


def test_agent2389_pods_mount_the_agent_config_and_reach_redis_by_its_service(manifests: list[dict[str, Any]]) -> None:
    for name in ("bridge", "worker", "web"):
        spec = pod_spec(find(manifests, "Deployment", name))
        volumes = {v["name"]: v for v in spec["volumes"]}
        assert volumes["agent-config"]["configMap"]["name"] == "agent-config"
        container = spec["containers"][0]
        mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
        assert container["args"][container["args"].index("--config") + 1] == mounts["agent-config"]
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert urlsplit(env["REDIS_URL"]).hostname == "redis"


def test_the_broker_runs_the_shipped_mosquitto_config(manifests: list[dict[str, Any]]) -> None:
    data = find(manifests, "ConfigMap", "mosquitto-config")["data"]
    assert data == {"mosquitto.conf": repo_path("config/mosquitto/mosquitto.conf").read_text(encoding="utf-8")}


def test_redis_never_evicts_celery_messages(manifests: list[dict[str, Any]]) -> None:
    args = pod_spec(find(manifests, "Deployment", "redis"))["containers"][0]["args"]
    assert args[args.index("--maxmemory-policy") + 1] == "noeviction"


def test_services_select_pods_and_name_ports_that_exist(manifests: list[dict[str, Any]]) -> None:
    deployments = of_kind(manifests, "Deployment")
    for service in of_kind(manifests, "Service"):
        selector = service["spec"]["selector"]
        selected = [d for d in deployments if matches(selector, d["spec"]["template"]["metadata"]["labels"])]
        assert len(selected) == 1, service["metadata"]["name"]
        ports = {p["name"] for c in pod_spec(selected[0])["containers"] for p in c.get("ports", [])}
        assert {p["targetPort"] for p in service["spec"]["ports"]} <= ports


def test_the_autoscaler_and_disruption_budget_cover_the_workers(manifests: list[dict[str, Any]]) -> None:
    worker_labels = find(manifests, "Deployment", "worker")["spec"]["template"]["metadata"]["labels"]
    autoscaler = find(manifests, "HorizontalPodAutoscaler", "worker")
    assert autoscaler["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "worker"}
    assert 1 <= autoscaler["spec"]["minReplicas"] < autoscaler["spec"]["maxReplicas"]
    budget = find(manifests, "PodDisruptionBudget", "worker")
    assert matches(budget["spec"]["selector"]["matchLabels"], worker_labels)


def test_network_policies_let_agent2389_pods_reach_redis_and_nobody_else(manifests: list[dict[str, Any]]) -> None:
    policies = of_kind(manifests, "NetworkPolicy")
    assert any(p["spec"]["podSelector"] == {} and "ingress" not in p["spec"] for p in policies), "no default deny"
    redis_policy = next(p for p in policies if p["spec"]["podSelector"] == {"matchLabels": {"app": "redis"}})
    allowed = redis_policy["spec"]["ingress"][0]["from"][0]["podSelector"]["matchLabels"]
    for name in ("bridge", "worker", "web"):
        assert matches(allowed, find(manifests, "Deployment", name)["spec"]["template"]["metadata"]["labels"])
    assert not matches(allowed, find(manifests, "Deployment", "mqtt-broker")["spec"]["template"]["metadata"]["labels"])


def test_the_monitoring_overlay_wraps_our_alerts_in_a_prometheus_rule() -> None:
    result = subprocess.run([sys.executable, "scripts/render-prometheusrule.py", "--check"], cwd=REPO,
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    manifests = kustomize("k8s/monitoring")
    rule = find(manifests, "PrometheusRule", "agent2389-alerts")
    assert rule["metadata"]["namespace"] == "agent2389"
    assert rule["spec"]["groups"] == load_yaml(repo_path("config/prometheus/alerts.yml"))["groups"]
    monitor = find(manifests, "ServiceMonitor", "agent2389")
    web_labels = find(manifests, "Service", "web")["metadata"]["labels"]
    assert matches(monitor["spec"]["selector"]["matchLabels"], web_labels)
    job = web_labels[monitor["spec"]["jobLabel"]]
    compose_jobs = [c["job_name"] for c in load_yaml(repo_path("config/prometheus/prometheus.yml"))["scrape_configs"]]
    assert compose_jobs == [job]
    alerts = repo_path("config/prometheus/alerts.yml").read_text(encoding="utf-8")
    assert set(re.findall(r'job="([^"]+)"', alerts)) <= {job}
    assert find(manifests, "Deployment", "worker")  # the overlay is the whole system plus monitoring


def test_the_prometheus_rule_passes_promtool(tmp_path: Path) -> None:
    promtool = require_tool("promtool", "alert rules are checked with `promtool check rules` (Debian: prometheus)")
    rule = load_yaml(repo_path("k8s/monitoring/prometheusrule.yaml"))
    rules_file = tmp_path / "rules.yml"
    rules_file.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}), encoding="utf-8")
    result = subprocess.run([promtool, "check", "rules", str(rules_file)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_tls_overlay_validates_and_wires_the_certificates_to_broker_and_agents(tmp_path: Path) -> None:
    manifests = kustomize("k8s/tls")
    for manifest in manifests:
        kubernetes_validate.validate(manifest, KUBERNETES_VERSIONS[-1], strict=True)
    broker = pod_spec(find(manifests, "Deployment", "mqtt-broker"))
    volumes = {v["name"]: v for v in broker["volumes"]}
    assert volumes["config"]["configMap"]["name"] == "mosquitto-tls-config"
    conf = find(manifests, "ConfigMap", "mosquitto-tls-config")["data"]["mosquitto.conf"]
    assert conf == repo_path("config/mosquitto/tls/mosquitto.conf").read_text(encoding="utf-8")
    mounted = {f"/mosquitto/certs/{item['path']}" for item in volumes["certs"]["secret"]["items"]}
    wanted = {line.split()[1] for line in conf.splitlines() if line.split()[:1] in (["certfile"], ["keyfile"])}
    assert mounted == wanted and volumes["certs"]["secret"]["secretName"] == "mqtt-tls"
    data = find(manifests, "ConfigMap", "agent-config-tls")["data"]
    assert data == {p.name: p.read_text(encoding="utf-8") for p in repo_path("config/deploy/tls").glob("*.toml")}
    for name, text in data.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    report = inspect_config(tmp_path, environ={})
    assert report.errors == [] and {a.mqtt.tls for a in report.agents} == {True}
    for name in ("bridge", "worker", "web"):
        spec = pod_spec(find(manifests, "Deployment", name))
        ca_volume = next(v for v in spec["volumes"] if v.get("secret", {}).get("secretName") == "mqtt-tls")
        mount = next(m for m in spec["containers"][0]["volumeMounts"] if m["name"] == ca_volume["name"])
        ca_files = {f"{mount['mountPath']}/{item['path']}" for item in ca_volume["secret"]["items"]}
        assert {agent.mqtt.ca_file for agent in report.agents} <= ca_files
        assert {v["configMap"]["name"] for v in spec["volumes"] if v["name"] == "agent-config"} == {"agent-config-tls"}
    policy = find(manifests, "NetworkPolicy", "mqtt-broker-from-anywhere")
    assert [p["port"] for rule in policy["spec"]["ingress"] for p in rule["ports"]] == [8883]


def test_the_password_overlay_gives_the_broker_only_the_hashes_and_the_agents_only_the_login(
    tmp_path: Path,
) -> None:
    manifests = kustomize("k8s/auth")
    for manifest in manifests:
        kubernetes_validate.validate(manifest, KUBERNETES_VERSIONS[-1], strict=True)
    broker = pod_spec(find(manifests, "Deployment", "mqtt-broker"))
    volumes = {v["name"]: v for v in broker["volumes"]}
    assert volumes["config"]["configMap"]["name"] == "mosquitto-auth-config"
    conf = find(manifests, "ConfigMap", "mosquitto-auth-config")["data"]["mosquitto.conf"]
    assert conf == repo_path("config/mosquitto/auth/mosquitto.conf").read_text(encoding="utf-8")
    settings = [line.split() for line in conf.splitlines() if line.strip()]
    [password_file] = [words[1] for words in settings if words[0] == "password_file"]
    [mount] = [m for m in broker["containers"][0]["volumeMounts"] if m["mountPath"] == password_file]
    assert volumes[mount["name"]]["secret"]["secretName"] == "mqtt-passwd"
    probe = broker["containers"][0]["readinessProbe"]["exec"]["command"]
    assert ["listener", probe[probe.index("-p") + 1], "127.0.0.1"] in settings
    data = find(manifests, "ConfigMap", "agent-config-auth")["data"]
    assert data == {p.name: p.read_text(encoding="utf-8") for p in repo_path("config/deploy/auth").glob("*.toml")}
    for name, text in data.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    report = inspect_config(tmp_path, environ={"MQTT_USERNAME": "u", "MQTT_PASSWORD": "p"})
    assert report.errors == [] and report.agents
    wanted = {name for agent in report.agents for name in (agent.mqtt.username_env, agent.mqtt.password_env)}
    for name in ("bridge", "worker", "web"):
        spec = pod_spec(find(manifests, "Deployment", name))
        from_secret = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in spec["containers"][0]["env"]
                       if "secretKeyRef" in e.get("valueFrom", {})}
        assert all(from_secret[variable] == {"name": "mqtt-auth", "key": variable} for variable in wanted)
        assert "mqtt-passwd" not in str(spec)
        assert {v["configMap"]["name"] for v in spec["volumes"] if v["name"] == "agent-config"} == {"agent-config-auth"}


def test_the_broker_is_covered_by_a_network_policy_that_opens_only_its_mqtt_port(
    manifests: list[dict[str, Any]],
) -> None:
    broker = find(manifests, "Deployment", "mqtt-broker")
    labels = broker["spec"]["template"]["metadata"]["labels"]
    policies = [p for p in of_kind(manifests, "NetworkPolicy")
                if matches(p["spec"]["podSelector"].get("matchLabels", {}), labels)]
    assert any(p["spec"]["podSelector"] == {} and "ingress" not in p["spec"] for p in policies), "no default deny"
    opened = [port for p in policies for rule in p["spec"].get("ingress", []) for port in rule.get("ports", [])]
    assert opened == [{"protocol": "TCP", "port": 1883}]
    container_ports = [port["containerPort"] for port in pod_spec(broker)["containers"][0]["ports"]]
    assert container_ports == [1883]
