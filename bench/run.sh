#!/usr/bin/env bash
# The whole benchmark in one command (issue #8):
#   bench/run.sh [--quick] [--duration S] [--warmup S] [--concurrency 1,16,64] [--servers LIST]
#                [--only SCENARIOS] [--no-report] [--note TEXT]
#
# 1. installs wrk with apt-get if it is missing;
# 2. `npm ci` for the peer (bench/peer), while it builds Latchkey in release mode with its
#    ceiling probe (`--features bench`: `latchkey ceilings`, src/ceilings.rs) into
#    CARGO_TARGET_DIR (default /var/tmp/latchkey-bench-target);
# 3. creates an empty Postgres database (BENCH_PG, default postgres://postgres@127.0.0.1:5432,
#    database BENCH_DB, default latchkey_bench; dropped again at the end);
# 4. bench/suite.py: the one-core signing/argon2 ceilings, then every scenario against Latchkey
#    on Postgres, Latchkey on SQLite and the peer, each server pinned to SERVER_CPU (default 0)
#    and the load to LOAD_CPU (default 1), loopback only;
# 5. appends to bench/RESULTS.md, redraws bench/results/latest.svg and the README's Benchmark
#    section (skip with --no-report).
# Default durations (1 s per run, short warm-ups) keep the measuring part near 3.5 minutes, so
# a fresh machine has the table within 10 minutes, build included (bench/README.md has the
# measured time); --duration 4 gives steadier figures in about 8 minutes of measuring; --quick
# is a smoke test of about 2.5 minutes whose figures are rough.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/latchkey-bench-target}"
server_cpu="${SERVER_CPU:-0}"
load_cpu="${LOAD_CPU:-1}"
pg="${BENCH_PG:-postgres://postgres@127.0.0.1:5432}"
db="${BENCH_DB:-latchkey_bench}"  # another name when two benches share one Postgres
start=$(date +%s)
step() { printf '\n[%s +%ss] %s\n' "$(date +%H:%M:%S)" "$(( $(date +%s) - start ))" "$*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

step "tools"
if ! command -v wrk >/dev/null; then
  as_root apt-get install -y wrk || { as_root apt-get update && as_root apt-get install -y wrk; }
fi
for tool in taskset node npm python3 cargo psql; do
  command -v "$tool" >/dev/null || { echo "bench/run.sh: $tool is required" >&2; exit 1; }
done
if [ "$(nproc)" -lt 2 ]; then
  echo "bench/run.sh: needs 2 CPUs (server and load generator each get one)" >&2
  exit 1
fi

# npm ci mostly waits on the network, so it runs beside the build instead of before it.
step "peer dependencies (npm ci, in the background) and release build into $CARGO_TARGET_DIR"
npm_log="$(mktemp)"
(cd "$here/peer" && npm ci --no-audit --no-fund --loglevel=error) >"$npm_log" 2>&1 &
npm_pid=$!
(cd "$root" && cargo build --release --locked --features bench --bin latchkey)
if ! wait "$npm_pid"; then
  cat "$npm_log" >&2
  echo "bench/run.sh: npm ci failed in bench/peer" >&2
  exit 1
fi
rm -f "$npm_log"

step "Postgres database $db"
psql "$pg/postgres" -v ON_ERROR_STOP=1 -qc "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
trap 'psql "$pg/postgres" -qc "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true' EXIT

step "benchmark"
python3 "$here/suite.py" \
  --latchkey "$CARGO_TARGET_DIR/release/latchkey" \
  --pg-url "$pg/$db" --server-cpu "$server_cpu" --load-cpu "$load_cpu" "$@"
step "done"
