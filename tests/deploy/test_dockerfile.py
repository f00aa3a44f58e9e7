"""The Dockerfile, read instruction by instruction (no Docker engine here), and the install it performs."""

from __future__ import annotations

import fnmatch
import json
import shutil
import subprocess
import sys
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from agent2389.ops.cli import build_parser
from tests.conftest import REPO
from tests.deploy.conftest import load_yaml_documents, repo_path


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str


def read_dockerfile(path: Path) -> list[list[Instruction]]:
    """Instructions grouped by build stage, continuation lines joined, comments dropped."""
    stages: list[list[Instruction]] = []
    logical = ""
    for line in path.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        logical += stripped.removesuffix("\\").strip() + " "
        if stripped.endswith("\\"):
            continue
        keyword, _, arguments = logical.strip().partition(" ")
        logical = ""
        if keyword.upper() == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(Instruction(keyword.upper(), arguments.strip()))
    return stages


STAGES = read_dockerfile(repo_path("Dockerfile"))
FINAL = STAGES[-1]


def final(keyword: str) -> list[str]:
    return [i.arguments for i in FINAL if i.keyword == keyword]


def exec_form(arguments: str) -> list[str]:
    value = json.loads(arguments)
    assert isinstance(value, list) and all(isinstance(part, str) for part in value), arguments
    return value


def test_the_image_is_built_in_stages_and_the_runtime_takes_only_the_virtualenv() -> None:
    assert len(STAGES) >= 2
    build_name = STAGES[0][0].arguments.split()[-1]
    assert [a for a in final("COPY") if a.startswith("--from=")] == [f"--from={build_name} /opt/venv /opt/venv"]
    assert not any("pip install" in a for a in final("RUN")), "the runtime stage must not build anything"


def test_the_runtime_runs_as_the_same_non_root_uid_that_kubernetes_expects() -> None:
    users = final("USER")
    assert users, "no USER in the runtime stage"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0
    for name in ("bridge", "worker", "web"):
        docs = load_yaml_documents(repo_path(f"k8s/base/{name}.yaml").read_text(encoding="utf-8"))
        (deployment,) = [doc for doc in docs if doc["kind"] == "Deployment"]
        assert deployment["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == int(uid)


def test_signals_reach_agent2389_through_exec_form_entrypoint_and_cmd() -> None:
    entrypoint = exec_form(final("ENTRYPOINT")[-1])
    assert entrypoint[-1] == "agent2389" and Path(entrypoint[0]).name == "tini"
    assert exec_form(final("CMD")[-1]) == ["--help"]  # started without a role, the image lists the roles


def test_the_health_check_is_an_agent2389_command_in_exec_form() -> None:
    healthchecks = final("HEALTHCHECK")
    assert len(healthchecks) == 1
    options, _, command = healthchecks[0].partition("CMD ")
    assert "--interval=" in options and "--timeout=" in options
    argv = exec_form(command)
    assert argv[:2] == ["agent2389", "health"]
    build_parser().parse_args(argv[1:])


def test_python_output_is_unbuffered_and_logs_are_json_by_default() -> None:
    env = " ".join(final("ENV"))
    assert "PYTHONUNBUFFERED=1" in env and "LOG_FORMAT=json" in env


def test_every_copied_path_exists_and_is_not_excluded_by_dockerignore() -> None:
    patterns = [line.strip() for line in repo_path(".dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    for stage in STAGES:
        for instruction in stage:
            if instruction.keyword != "COPY" or instruction.arguments.startswith("--from="):
                continue
            sources = [a for a in instruction.arguments.split() if not a.startswith("--")][:-1]
            for source in sources:
                assert repo_path(source).exists(), source
                assert not ignored(source, patterns), f"{source} is excluded by .dockerignore"


def ignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last pattern that matches decides; ``!`` re-includes."""
    result = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        if fnmatch.fnmatch(path.rstrip("/"), pattern.removeprefix("!").rstrip("/")):
            result = not negated
    return result


def test_the_build_stage_copies_every_package_that_pip_installs() -> None:
    pyproject = tomllib.loads(repo_path("pyproject.toml").read_text())
    includes = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {p.name for p in REPO.iterdir() if (p / "__init__.py").is_file()
                and any(fnmatch.fnmatch(p.name, pattern) for pattern in includes)}
    copied = {source for i in STAGES[0] if i.keyword == "COPY" for source in i.arguments.split()[:-1]}
    assert packages and packages <= copied
    assert {"pyproject.toml", "README.md"} <= copied


def test_the_image_validates_the_agent_files_it_ships_at_build_time() -> None:
    runs = " ".join(final("RUN"))
    assert "agent2389 validate --config /app/config/deploy" in runs


@pytest.mark.slow
def test_pip_install_of_what_the_build_stage_copies_carries_every_package_file(tmp_path: Path) -> None:
    """Builds the wheel from exactly the files the build stage copies, as `pip install .` does in the image."""
    context = tmp_path / "context"
    packages = []
    for instruction in STAGES[0]:
        if instruction.keyword == "COPY":
            for source in instruction.arguments.split()[:-1]:
                copy_into(REPO / source, context / source)
                packages += [source] if (REPO / source).is_dir() else []
    pip_wheel = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(context)]
    result = subprocess.run(pip_wheel, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    packaged = set(zipfile.ZipFile(next(tmp_path.glob("*.whl"))).namelist())
    files = [f for package in packages for f in (context / package).rglob("*") if f.is_file()]
    expected = {str(f.relative_to(context)) for f in files}
    assert expected and expected - packaged == set()


def copy_into(source: Path, target: Path) -> None:
    if source.is_dir():
        shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
