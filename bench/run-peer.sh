#!/usr/bin/env bash
# Benchmark the oidc-provider peer: start it pinned to one CPU, run every scenario from another,
# stop it. Extra arguments go to bench/run.py (e.g. --duration 10 --concurrency 16 --only cc_rs256).
#   SERVER_CPU (default 0), LOAD_CPU (default 1), PORT (default 3001)
# Needs node >= 20, npm, python3, wrk (apt-get install -y wrk).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
port="${PORT:-3001}"
[ -d "$here/peer/node_modules/oidc-provider" ] || (cd "$here/peer" && npm ci --no-audit --no-fund)
if curl -s -o /dev/null "http://127.0.0.1:$port/"; then
  echo "something already listens on 127.0.0.1:$port" >&2
  exit 1
fi
PORT="$port" taskset -c "${SERVER_CPU:-0}" node "$here/peer/server.mjs" >"${PEER_LOG:-/tmp/bench-peer.log}" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true' EXIT
python3 "$here/run.py" --flavor peer --base "http://127.0.0.1:$port" --load-cpu "${LOAD_CPU:-1}" "$@"
