# Stand-in for prom/prometheus, for make test-deploy on a machine that reaches no image registry
# (scripts/docker-host.sh builds it only when the image is missing and cannot be pulled): Debian
# bookworm's prometheus package on the python:3.11-slim-bookworm stand-in, itself a Debian bookworm root.
# Same entry point, user, data folder and `wget` for the health check as the official image.
ARG BASE=python:3.11-slim-bookworm
FROM ${BASE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends prometheus wget \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /prometheus \
 && chown nobody:nogroup /prometheus
USER nobody
WORKDIR /prometheus
EXPOSE 9090
ENTRYPOINT ["/usr/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]
