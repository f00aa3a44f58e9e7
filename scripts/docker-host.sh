#!/usr/bin/env bash
# Makes this machine a Docker host for `make test-deploy` (tests/deploy/test_compose_stack.py):
#   1. installs docker.io, docker-compose (Compose v1) and debootstrap from Debian when missing (as root);
#   2. starts dockerd when no daemon answers (as root; its log: /var/log/dockerd.log);
#   3. makes sure the base images compose and the Dockerfile name are there: pulled where a registry is
#      reachable, otherwise built offline as stand-ins: python, redis and mosquitto by the workplace's
#      shared/tools/docker-standins.sh (found beside the repository, or set STANDINS), Prometheus from
#      tests/deploy/standins/prometheus.Dockerfile.
# Idempotent: a second run finds everything and does nothing. Exits non-zero with a reason otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "docker-host: $*"; }
fail() { echo "docker-host: $*" >&2; exit 1; }

install_missing() {
  local packages=()
  command -v dockerd >/dev/null || packages+=(docker.io)
  command -v docker-compose >/dev/null || packages+=(docker-compose)
  command -v debootstrap >/dev/null || packages+=(debootstrap)
  [ ${#packages[@]} -eq 0 ] && return 0
  [ "$(id -u)" -eq 0 ] || fail "missing ${packages[*]}; install them (apt-get install ${packages[*]}) or run as root"
  say "installing ${packages[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
}

start_daemon() {
  docker info >/dev/null 2>&1 && return 0
  [ "$(id -u)" -eq 0 ] || fail "no Docker daemon answers and only root can start one here"
  say "starting dockerd (log: /var/log/dockerd.log)"
  setsid nohup dockerd >>/var/log/dockerd.log 2>&1 </dev/null &
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && return 0
    sleep 0.5
  done
  tail -20 /var/log/dockerd.log >&2
  fail "dockerd did not answer within 30 s"
}

have() { docker image inspect "$1" >/dev/null 2>&1; }

# A registry that cannot be reached refuses at once here; elsewhere a pull may take a while.
pulled() { timeout 300 docker pull -q "$1" >/dev/null 2>&1; }

standins_script() {
  local candidate
  for candidate in "${STANDINS:-}" ../shared/tools/docker-standins.sh; do
    [ -n "$candidate" ] && [ -f "$candidate" ] && { echo "$candidate"; return 0; }
  done
  return 1
}

base_images() {
  local wanted=() name image
  for pair in python=python:3.11-slim-bookworm redis=redis:7-alpine mosquitto=eclipse-mosquitto:2; do
    name=${pair%%=*} image=${pair#*=}
    have "$image" || pulled "$image" || wanted+=("$name")
  done
  [ ${#wanted[@]} -eq 0 ] && return 0
  local script
  script=$(standins_script) || fail "cannot pull ${wanted[*]} and no docker-standins.sh (set STANDINS)"
  say "building stand-ins for ${wanted[*]} with $script (about 2 minutes)"
  # Its rootfs work folder stays outside the repository, so `docker build .` never sees it.
  IMAGES="${wanted[*]}" bash "$script" "${STANDIN_WORKDIR:-/var/tmp/agent2389-standins}" >/dev/null
}

monitoring_images() {
  local prometheus
  prometheus=$(sed -n 's/^ *image: *\(prom\/prometheus:.*\)$/\1/p' docker-compose.yml)
  [ -n "$prometheus" ] || fail "no prom/prometheus image in docker-compose.yml"
  if have "$prometheus" || pulled "$prometheus"; then return 0; fi
  say "building a stand-in for $prometheus from Debian's prometheus package"
  DOCKER_BUILDKIT=0 docker build -q -t "$prometheus" -f tests/deploy/standins/prometheus.Dockerfile \
    tests/deploy/standins >/dev/null
}

install_missing
start_daemon
base_images
monitoring_images
say "ready: $(docker version --format 'engine {{.Server.Version}}'), $(docker-compose version --short | sed 's/^/compose /')"
