# One image for every role: `agent2389 bridge|worker|web|validate ...` (see docs/deployment.md).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# Build stage: compilers and pip stay here; only the finished virtualenv moves on. constraints.txt holds
# every version the tests ran with, so an image built later runs what was tested (Flower included).
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md constraints.txt ./
COPY agent2389 ./agent2389
COPY bridge ./bridge
COPY workers ./workers
COPY web ./web
RUN pip install --upgrade pip setuptools wheel \
 && pip install -c constraints.txt ".[flower]"

# Runtime stage: the virtualenv, the example and deploy agent files, tini, and an unprivileged user.
FROM ${PYTHON_IMAGE} AS runtime
# tini is PID 1: it forwards SIGTERM to agent2389 (exec form, no shell in between) and reaps children.
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 agent2389 \
 && useradd --system --uid 10001 --gid agent2389 --home-dir /app --no-create-home \
      --shell /usr/sbin/nologin agent2389
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY --chown=root:root config ./config
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    LOG_FORMAT=json \
    LOG_LEVEL=INFO \
    HEALTH_PORT=8080
# Fail the build, not the deployment, when the install or a shipped agent file is broken.
RUN agent2389 --version \
 && agent2389 validate --config /app/config/examples/echo \
 && agent2389 validate --config /app/config/deploy
# Numeric, so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER 10001:10001
EXPOSE 8080
# Checks this container's own process whatever its role: /live for web, a fresh heartbeat for a
# worker, an MQTT connection for the bridge (agent2389/ops/probe.py).
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
    CMD ["agent2389", "health", "--self"]
ENTRYPOINT ["/usr/bin/tini", "--", "agent2389"]
CMD ["--help"]
