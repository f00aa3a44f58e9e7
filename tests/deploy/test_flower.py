"""Flower as compose and k8s ship it: `celery -A agent2389 flower` from our image, behind a login, not exposed."""

from __future__ import annotations

import os
import subprocess
from typing import Any

import kubernetes_validate
import pytest

from tests.deploy.conftest import load_yaml, load_yaml_documents, repo_path, require_tool

# Renders and validates the Kubernetes overlay.
pytestmark = pytest.mark.slow

FLOWER = ["celery", "-A", "agent2389", "flower"]


def compose_flower() -> dict[str, Any]:
    service: dict[str, Any] = load_yaml(repo_path("docker-compose.yml"))["services"]["flower"]
    return service


def kustomized(directory: str) -> list[dict[str, Any]]:
    kubectl = require_tool("kubectl", "the Kubernetes manifests are rendered with `kubectl kustomize`")
    result = subprocess.run([kubectl, "kustomize", directory], cwd=repo_path("."), capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    return load_yaml_documents(result.stdout)


def test_compose_runs_flower_from_our_image_on_loopback_only() -> None:
    flower = compose_flower()
    assert flower["image"] == "${AGENT2389_IMAGE:-agent2389:latest}"
    assert flower["profiles"] == ["flower"]
    assert " ".join(FLOWER) in flower["command"][0]
    assert flower["ports"] == ["127.0.0.1:${FLOWER_HOST_PORT:-5555}:5555"]
    assert "FLOWER_BASIC_AUTH" in flower["environment"] and flower["environment"]["FLOWER_BASIC_AUTH"] is None


def test_compose_flower_refuses_to_start_without_a_login() -> None:
    flower = compose_flower()
    script = flower["command"][0].replace("$$", "$")
    shell = [*flower["entrypoint"][2:], script]  # what tini runs: /bin/sh -c SCRIPT
    env = {k: v for k, v in os.environ.items() if k != "FLOWER_BASIC_AUTH"}
    refused = subprocess.run(shell, capture_output=True, text=True, timeout=10, env=env)
    assert refused.returncode == 2
    assert "set FLOWER_BASIC_AUTH=user:password" in refused.stderr


def test_the_flower_overlay_validates_and_takes_its_login_from_a_secret() -> None:
    manifests = kustomized("k8s/flower")
    for manifest in manifests:
        kubernetes_validate.validate(manifest, kubernetes_validate.utils.latest_version(), strict=True)
    [deployment] = [m for m in manifests if m["kind"] == "Deployment" and m["metadata"]["name"] == "flower"]
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert container["command"][-1] == "celery" and container["args"][:3] == FLOWER[1:]
    env = {e["name"]: e for e in container["env"]}
    assert env["FLOWER_BASIC_AUTH"]["valueFrom"]["secretKeyRef"] == {"name": "agent2389-flower", "key": "basic-auth"}
    # The label that lets it reach Redis through the network policy, and no way in from outside the cluster.
    assert deployment["spec"]["template"]["metadata"]["labels"]["app"] == "agent"
    [service] = [m for m in manifests if m["kind"] == "Service" and m["metadata"]["name"] == "flower"]
    assert service["spec"]["type"] == "ClusterIP"
    assert any(m["kind"] == "Deployment" and m["metadata"]["name"] == "worker" for m in manifests)

