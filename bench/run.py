#!/usr/bin/env python3
"""Run every benchmark scenario against one server that is already running.

  python3 bench/run.py --flavor peer --base http://127.0.0.1:3001 [--duration 10] [--concurrency 16]

Prepares the inputs (bench/lib), then per scenario a --warmup run (discarded) and a --duration run,
the load generator pinned with `taskset -c LOAD_CPU`: wrk + bench/lua/request.lua for the fixed
requests, bench/drive.py for code+PKCE and refresh. Pin the server yourself (bench/run-peer.sh
does, for the peer). Writes bench/results/<flavor>-<time>.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "lib"))
import benchlib  # noqa: E402

WRK_ORDER = ["cc_rs256", "cc_es256", "cc_eddsa", "introspect", "userinfo", "discovery", "jwks"]
DRIVE = ["code", "refresh"]
LAST = ["password_login"]  # argon2: slow and memory-hungry, keep it from disturbing the rest
ALL = WRK_ORDER + DRIVE + LAST
PREP_MAX_AGE = 300  # seconds; user access tokens live 600 s on both servers


def result_line(out: str) -> dict:
    for line in out.splitlines():
        if line.startswith("BENCH_RESULT "):
            return json.loads(line[len("BENCH_RESULT "):])
    raise RuntimeError(f"no BENCH_RESULT in output:\n{out[-2000:]}")


def run_wrk(s: dict, seconds: float, a) -> dict:
    env = dict(os.environ, BENCH_NAME=s["name"], BENCH_METHOD=s["method"], BENCH_BODY=s["body"],
               BENCH_HEADERS="\n".join(f"{k}: {v}" for k, v in s["headers"].items()))
    cmd = ["taskset", "-c", a.load_cpu, "wrk", "-t1", f"-c{a.concurrency}", f"-d{max(1, round(seconds))}s",
           "--timeout", "10s", "-s", os.path.join(HERE, "lua", "request.lua"), s["url"]]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=seconds + 60)
    if p.returncode != 0:
        raise RuntimeError(f"wrk failed ({p.returncode}): {p.stdout[-1000:]} {p.stderr[-1000:]}")
    r = result_line(p.stdout)
    r["concurrency"] = a.concurrency
    return r


def run_drive(name: str, prep_file: str, seconds: float, warmup: float, a) -> dict:
    cmd = ["taskset", "-c", a.load_cpu, sys.executable, os.path.join(HERE, "drive.py"), "--prep", prep_file,
           "--scenario", name, "--concurrency", str(a.concurrency), "--duration", str(seconds),
           "--warmup", str(warmup)]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + warmup + 120)
    if p.returncode != 0:
        raise RuntimeError(f"drive.py failed: {p.stderr[-2000:]}")
    return result_line(p.stdout)


def fmt(v) -> str:
    return "-" if v is None else (f"{v:.1f}" if isinstance(v, float) else str(v))


def table(results: list[dict]) -> str:
    rows = ["| scenario | req/s | p50 ms | p99 ms | errors | note |", "|---|---:|---:|---:|---:|---|"]
    for r in results:
        note = ""
        if r["name"] == "code":
            st = r.get("steps", {})
            note = (f"op = GET /authorize + POST /token ({fmt(r['http_rps'])} HTTP req/s); "
                    f"p50 authorize {st.get('authorize', {}).get('p50_ms')} ms, token {st.get('token', {}).get('p50_ms')} ms")
        if "driver_cpu" in r:
            note += ("; " if note else "") + f"driver CPU {r['driver_cpu']}"
        p50 = r["p50_ms"]
        p99 = r["p99_ms"]
        rows.append(f"| {r['name']} | {fmt(r['rps'])} | {p50:.2f} | {p99:.2f} | {r['errors']} | {note} |"
                    if p50 is not None else f"| {r['name']} | {fmt(r['rps'])} | - | - | {r['errors']} | {note} |")
    return "\n".join(rows)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--flavor", required=True, choices=sorted(benchlib.FLAVORS))
    ap.add_argument("--base", required=True)
    ap.add_argument("--duration", type=int, default=10, help="seconds per scenario (recorded)")
    ap.add_argument("--warmup", type=int, default=2, help="seconds per scenario (discarded)")
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--load-cpu", default="1", help="taskset -c value for the load generator")
    ap.add_argument("--only", default=",".join(ALL), help=f"comma list out of {','.join(ALL)}")
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    a = ap.parse_args()
    if not (0 < a.duration <= 300 and 0 <= a.warmup <= 60 and 0 < a.concurrency <= 1024):
        raise SystemExit("duration in (0, 300], warmup in [0, 60], concurrency in (0, 1024]")
    host = urllib.parse.urlsplit(a.base).hostname
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit("load goes to loopback only")
    if not shutil.which("wrk"):
        raise SystemExit("wrk not found (Debian: apt-get install -y wrk)")
    wanted = [s for s in ALL if s in set(a.only.split(","))]

    os.makedirs(a.out, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    prep_file = os.path.join(a.out, f"{a.flavor}-{stamp}.prep.json")
    benchlib.wait_ready(a.base)
    prep, prep_at = None, 0.0

    results = []
    for name in wanted:
        if prep is None or time.monotonic() - prep_at > PREP_MAX_AGE:
            prep, prep_at = benchlib.prepare(a.base, a.flavor), time.monotonic()
            with open(prep_file, "w") as f:
                json.dump(prep, f, indent=2)
        print(f"[{time.strftime('%H:%M:%S')}] {name} ...", file=sys.stderr, flush=True)
        status = prep.get("checks", {}).get(f"wrk:{name}", 200)
        if status != 200:
            print(f"  skipped: its sanity request answered HTTP {status}", file=sys.stderr, flush=True)
            continue
        if name in DRIVE:
            r = run_drive(name, prep_file, a.duration, a.warmup, a)
        else:
            s = next(x for x in prep["wrk"] if x["name"] == name)
            if a.warmup:
                run_wrk(s, a.warmup, a)
            r = run_wrk(s, a.duration, a)
        print("  " + json.dumps(r), file=sys.stderr, flush=True)
        results.append(r)

    doc = {"flavor": a.flavor, "base": a.base, "when": stamp, "duration": a.duration, "warmup": a.warmup,
           "concurrency": a.concurrency, "load_cpu": a.load_cpu, "checks": prep.get("checks") if prep else None,
           "results": results}
    out_file = os.path.join(a.out, f"{a.flavor}-{stamp}.json")
    with open(out_file, "w") as f:
        json.dump(doc, f, indent=2)
    print(table(results))
    print(f"\nwritten: {out_file}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
