#!/usr/bin/env bash
# The quick start: run the whole stack on local defaults with the echo agent, send it one task, show the
# answer, stop. A Redis or MQTT broker that is not running is started for the demo (see `agent2389 up`).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
PORT=${DEMO_PORT:-8080}
LOG=$(mktemp -t agent2389-demo.XXXXXX.log)

"$BIN/agent2389" up --config config/examples/echo --port "$PORT" >"$LOG" 2>&1 &
UP=$!
trap 'kill -INT $UP 2>/dev/null; wait $UP 2>/dev/null || true' EXIT

echo "starting agent2389 (logs: $LOG) ..."
# `up` says "agent2389 is up" only once its own web app reports the system ready; asking the port
# directly could reach another program that holds it.
for _ in $(seq 1 120); do
  if grep -q "agent2389 is up" "$LOG"; then break; fi
  if ! kill -0 $UP 2>/dev/null; then
    # Its one-line reason (a port in use, a configuration error), else where to look.
    grep -h "^agent2389 up: " "$LOG" >&2 || echo "agent2389 up exited; see $LOG" >&2
    exit 1
  fi
  sleep 0.5
done
grep -q "agent2389 is up" "$LOG" || { echo "agent2389 did not become ready; see $LOG" >&2; exit 1; }

echo '$ agent2389 inject --agent echo "hello, agent" --wait 10'
"$BIN/agent2389" inject --config config/examples/echo --agent echo "hello, agent" --wait 10
echo "health: $(curl -s "http://127.0.0.1:$PORT/health" | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])')"
