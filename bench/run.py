#!/usr/bin/env python3
"""Run the benchmark scenarios against one server that is already running.

  python3 bench/run.py --flavor peer --base http://127.0.0.1:13001 [--duration 4] [--concurrency 1,16,64]

Prepares the inputs (bench/lib), then per scenario and concurrency a --warmup run (discarded)
and a --duration run, the load generator pinned with `taskset -c LOAD_CPU`: wrk +
bench/lua/request.lua for the fixed requests, bench/drive.py for code+PKCE, refresh and password
logins. Then comes the "burst" measurement: client_credentials alone, then again while a login
burst runs, to show whether logins starve the token endpoint; last the floods (Latchkey only):
client_credentials and a user's logins while 1,000 abandoned password guesses arrive, from one
address ("flood", the issue's attack) and then each from its own ("flood_spread"). Pin the
server yourself (bench/run.sh does). Writes bench/results/<flavor>-<time>.json and prints a table.
bench/suite.py imports this module (Target) to run the same thing for several servers.
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

WRK = ["cc_rs256", "cc_es256", "cc_eddsa", "introspect", "userinfo", "discovery", "jwks"]
DRIVE = ["code", "refresh", "login"]
# Order of the run: logins last (argon2 is slow and memory-hungry; keep it from disturbing the
# rest), then the burst, which needs logins and client_credentials at once, then the floods,
# which leave throttle records behind (the one-address flood locks its address).
FLOODS = ["flood", "flood_spread"]
ALL = WRK + ["code", "refresh", "login", "burst", *FLOODS]
PREP_MAX_AGE = 300  # seconds; user access tokens live 600 s on both servers
BURST_CC = "cc_es256"  # the cheapest token: the most sensitive to losing CPU to argon2
FLOOD_GUESSES = 1000  # the flood: 1,000 password guesses ...
FLOOD_ABANDON = 0.3  # ... each given up by the attacker after 0.3 s
FLOOD_RETRY = 0.5  # a user told "busy" submits again after this long


def login_seconds(duration: float, concurrency: int) -> float:
    """The measured window of a login run. A login waits behind the other connections' argon2
    runs: at c=64 about 2 s at 30 logins/s, 3 s on the peer. An op that started before the
    window and is still running at its end counts as unfinished (an error), so the window is
    at least c/16 seconds; and at least 2 s, so that even c=1 counts some 60 logins."""
    return max(duration, 2.0, concurrency / 16)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def result_line(out: str, tag: str = "BENCH_RESULT") -> dict:
    for line in out.splitlines():
        if line.startswith(tag + " "):
            return json.loads(line[len(tag) + 1:])
    raise RuntimeError(f"no {tag} in output:\n{out[-2000:]}")


def wrk_cmd(s: dict, seconds: float, concurrency: int, load_cpu: str) -> tuple[list[str], dict]:
    env = dict(os.environ, BENCH_NAME=s["name"], BENCH_METHOD=s["method"], BENCH_BODY=s["body"],
               BENCH_HEADERS="\n".join(f"{k}: {v}" for k, v in s["headers"].items()))
    cmd = ["taskset", "-c", load_cpu, "wrk", "-t1", f"-c{concurrency}", f"-d{max(1, round(seconds))}s",
           "--timeout", "10s", "-s", os.path.join(HERE, "lua", "request.lua"), s["url"]]
    return cmd, env


def run_wrk(s: dict, seconds: float, concurrency: int, load_cpu: str) -> dict:
    cmd, env = wrk_cmd(s, seconds, concurrency, load_cpu)
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=seconds + 60)
    if p.returncode != 0:
        raise RuntimeError(f"wrk failed ({p.returncode}): {p.stdout[-1000:]} {p.stderr[-1000:]}")
    r = result_line(p.stdout)
    r["concurrency"] = concurrency
    return r


def drive_cmd(name: str, prep_file: str, seconds: float, warmup: float, concurrency: int,
              load_cpu: str) -> list[str]:
    return ["taskset", "-c", load_cpu, sys.executable, os.path.join(HERE, "drive.py"), "--prep", prep_file,
            "--scenario", name, "--concurrency", str(concurrency), "--duration", str(seconds),
            "--warmup", str(warmup)]


def run_drive(name: str, prep_file: str, seconds: float, warmup: float, concurrency: int, load_cpu: str) -> dict:
    cmd = drive_cmd(name, prep_file, seconds, warmup, concurrency, load_cpu)
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + warmup + 120)
    if p.returncode != 0:
        raise RuntimeError(f"drive.py failed: {p.stderr[-2000:]}")
    return result_line(p.stdout)


def token_statuses(base: str) -> dict[str, int]:
    """Latchkey's /metrics: responses of the token endpoint so far, by status. A request whose
    caller hung up before the answer is not counted (its handler was dropped)."""
    r = benchlib.Http(base).request("GET", "/metrics", cookies=False)
    out = {}
    for line in r.body.decode().splitlines():
        if line.startswith("latchkey_http_requests_total{") and 'route="/token"' in line:
            status = line.split('status="', 1)[1].split('"', 1)[0]
            out[status] = int(float(line.rsplit(" ", 1)[1]))
    return out


def run_flood(prep: dict, prep_file: str, seconds: float, warmup: float, cc_concurrency: int, load_cpu: str,
              measure=lambda f: f(), memory=None, hash_cpu_seconds=None, retry_delay: float = FLOOD_RETRY,
              name: str = "flood") -> dict:
    """client_credentials p99 alone, then while FLOOD_GUESSES abandoned password guesses arrive
    (drive.py --scenario flood or flood_spread, `name`, which also logs a user in over and
    over). The guesses arrive
    over max(4 s, the wrk run + 2.5 s), and wrk runs from 1 s into the flood, so it measures
    only the flood. Around the flood: the server's memory (`memory()`, VmRSS/VmHWM), the CPU
    time of its argon2 threads (`hash_cpu_seconds()`: how many passwords were really hashed)
    and the token endpoint's answers by status from /metrics."""
    s = next(x for x in prep["wrk"] if x["name"] == BURST_CC)
    if warmup:
        run_wrk(s, warmup, cc_concurrency, load_cpu)
    idle = measure(lambda: run_wrk(s, seconds, cc_concurrency, load_cpu))
    wrk_secs = max(1, round(seconds))
    window = max(4.0, wrk_secs + 2.5)
    lead = max(1.0, warmup)

    def during_flood() -> dict:
        mem0 = memory() if memory else None
        hash0 = hash_cpu_seconds() if hash_cpu_seconds else None
        st0 = token_statuses(prep["base"])
        cmd = drive_cmd(name, prep_file, window, lead, 1, load_cpu) + [
            "--guesses", str(FLOOD_GUESSES), "--abandon", str(FLOOD_ABANDON), "--retry-delay", str(retry_delay)]
        flood = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            time.sleep(lead + 1.0)
            w0 = time.time()
            r = run_wrk(s, wrk_secs, cc_concurrency, load_cpu)
            w1 = time.time()
            out, err = flood.communicate(timeout=window + lead + 120)
        finally:
            if flood.poll() is None:
                flood.kill()
        if flood.returncode != 0:
            raise RuntimeError(f"drive.py {name} failed: {err[-2000:]}")
        f = result_line(out)
        # When wrk ran, in seconds from the flood's start (wrk's own start-up included).
        f["cc_window_s"] = [round(w0 - f["started_at"], 3), round(w1 - f["started_at"], 3)]
        st1 = token_statuses(prep["base"])
        f["token_answers"] = {k: v - st0.get(k, 0) for k, v in st1.items() if v - st0.get(k, 0)}
        if memory:
            f["memory_before"], f["memory_after"] = mem0, memory()
        if hash_cpu_seconds:
            f["hash_cpu_s"] = round(hash_cpu_seconds() - hash0, 3)
        r["flood"] = f
        return r

    during = measure(during_flood)
    return {"name": name, "cc": BURST_CC, "cc_concurrency": cc_concurrency, "idle": idle, "during": during,
            "flood": during.pop("flood"),
            "p99_ratio": round(during["p99_ms"] / idle["p99_ms"], 2) if idle["p99_ms"] else None,
            "rps_ratio": round(during["rps"] / idle["rps"], 3) if idle["rps"] else None}


def run_burst(prep: dict, prep_file: str, seconds: float, warmup: float, cc_concurrency: int,
              login_concurrency: int, load_cpu: str, measure=lambda f: f()) -> dict:
    """client_credentials p99 alone, then while logins run flat out. The login driver starts
    first and outlives the wrk run, so wrk measures only the "during the burst" window.
    `measure(f)` runs f() and returns its result (Target passes its CPU accounting and repeats)."""
    s = next(x for x in prep["wrk"] if x["name"] == BURST_CC)
    if warmup:
        run_wrk(s, warmup, cc_concurrency, load_cpu)
    idle = measure(lambda: run_wrk(s, seconds, cc_concurrency, load_cpu))

    def during_logins() -> dict:
        lead = max(1.0, warmup)
        login_secs = seconds + 2
        logins = subprocess.Popen(drive_cmd("login", prep_file, login_secs, lead, login_concurrency, load_cpu),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            time.sleep(lead + 0.5)
            r = run_wrk(s, seconds, cc_concurrency, load_cpu)
            out, err = logins.communicate(timeout=login_secs + lead + 120)
        finally:
            if logins.poll() is None:
                logins.kill()
        if logins.returncode != 0:
            raise RuntimeError(f"drive.py login failed: {err[-2000:]}")
        r["logins"] = result_line(out)
        return r

    during = measure(during_logins)
    return {"name": "burst", "cc": BURST_CC, "cc_concurrency": cc_concurrency,
            "login_concurrency": login_concurrency, "idle": idle, "during": during,
            "logins": during.pop("logins"),
            "p99_ratio": round(during["p99_ms"] / idle["p99_ms"], 2) if idle["p99_ms"] else None,
            "rps_ratio": round(during["rps"] / idle["rps"], 3) if idle["rps"] else None}


class Target:
    """One running server and what has been measured on it. bench/suite.py keeps one per server
    and runs them scenario by scenario, interleaved, so that load from elsewhere on a shared
    machine falls on all of them alike rather than on whichever server ran at the time.
    `server_cpu_seconds()`, when given, returns the server process's CPU time so far: each
    result then records the share of its core the server got ("server_cpu"). Below ~0.95 on a
    saturating run, something else used the core, or the server was waiting (database, lock)."""

    def __init__(self, name: str, base: str, flavor: str, concurrencies: list[int], duration: float,
                 warmup: float, load_cpu: str, out_dir: str, burst_concurrency: int = 16,
                 server_cpu_seconds=None, core_times=None, retries: int = 0, retry_budget: list | None = None,
                 foreign_max: float = 0.25, scenario_warmup: float | None = None, memory=None,
                 hash_cpu_seconds=None, flood_retry_delay: float = FLOOD_RETRY):
        self.name, self.base, self.flavor = name, base, flavor
        # The flood reads these around itself when given: the server's VmRSS/VmHWM (MiB) and
        # the CPU time of its argon2 threads.
        self.memory, self.hash_cpu_seconds = memory, hash_cpu_seconds
        self.flood_retry_delay = flood_retry_delay
        self.concurrencies, self.duration, self.warmup = concurrencies, duration, warmup
        # wrk scenarios get one longer warm-up before their first run: node's JIT needs several
        # seconds of a request type before the peer reaches its speed (a 1 s warm-up left it at
        # less than half of it).
        self.scenario_warmup = warmup if scenario_warmup is None else scenario_warmup
        self.load_cpu, self.burst_concurrency, self.server_cpu_seconds = load_cpu, burst_concurrency, server_cpu_seconds
        # With both clocks, each result also gets "foreign_cpu": the share of the server's core
        # that went to anything but the server (other processes, and the hypervisor's steal
        # time, also given alone as "steal_cpu"). A run above foreign_max was disturbed and is
        # repeated up to `retries` times while retry_budget[0] lasts; the least disturbed
        # attempt is kept.
        self.core_times, self.retries, self.foreign_max = core_times, retries, foreign_max
        self.retry_budget = retry_budget if retry_budget is not None else [retries * 1000]
        os.makedirs(out_dir, exist_ok=True)
        self.when = time.strftime("%Y%m%d-%H%M%S")
        self.prep_file = os.path.join(out_dir, f"{name}-{self.when}.prep.json")
        self.prep, self.prep_at = None, 0.0
        self.users_ready = False  # the login loops' accounts have logged in once (consent)
        self.results: list[dict] = []
        self.burst: dict | None = None
        self.floods: dict[str, dict] = {}  # "flood", "flood_spread"

    def fresh_prep(self) -> dict:
        if self.prep is None or time.monotonic() - self.prep_at > PREP_MAX_AGE:
            self.prep = benchlib.prepare(self.base, self.flavor, login_users=not self.users_ready)
            self.prep_at, self.users_ready = time.monotonic(), True
            with open(self.prep_file, "w") as f:
                json.dump(self.prep, f, indent=2)
        return self.prep

    def run(self, name: str) -> None:
        """One scenario at every concurrency (the burst and the floods at their own)."""
        if name in FLOODS:
            if self.flavor != "latchkey":
                log(f"{self.name} {name}: skipped (Latchkey only: the peer has no password grant)")
                return
            log(f"{self.name} {name} c={self.burst_concurrency} ...")
            self.floods[name] = f = run_flood(self.fresh_prep(), self.prep_file, self.duration, self.warmup,
                                              self.burst_concurrency, self.load_cpu, measure=self.steady,
                                              memory=self.memory, hash_cpu_seconds=self.hash_cpu_seconds,
                                              retry_delay=self.flood_retry_delay, name=name)
            g, u = f["flood"], f["flood"]["legit"]
            log(f"  cc p99 idle {f['idle']['p99_ms']} ms, during the flood {f['during']['p99_ms']} ms; "
                f"{g['guesses']} guesses at {g['rate']}/s: {g['flood']}, token endpoint answered "
                f"{g['token_answers']}, argon2 CPU {g.get('hash_cpu_s')} s; user logins p50 {u['p50_ms']} ms, "
                f"max {u['max_ms']} ms, {u['ops']} logins, {u['retries']} retries, errors {u['errors']}"
                + (f"; VmHWM {g['memory_after']['VmHWM']} MiB" if g.get("memory_after") else ""))
            return
        for c in (self.concurrencies if name != "burst" else [self.burst_concurrency]):
            prep = self.fresh_prep()
            log(f"{self.name} {name} c={c} ...")
            if name == "burst":
                self.burst = b = run_burst(prep, self.prep_file, self.duration, self.warmup, c, c, self.load_cpu,
                                           measure=self.steady)
                lg = b["logins"]
                log(f"  cc p99 idle {b['idle']['p99_ms']} ms, during logins {b['during']['p99_ms']} ms "
                    f"({lg['rps']} logins/s, p50 {lg['p50_ms']} ms, errors {lg['errors']}"
                    + (f" {lg['error_kinds']}" if lg["errors"] else "")
                    + f", {lg.get('busy_retries', 0)} retries after 'busy')")
                continue
            if name not in DRIVE and self.scenario_warmup and c == self.concurrencies[0]:
                # One warm-up per scenario is enough for wrk (JIT, caches, connection set-up are
                # warm after it), at the highest concurrency: the JIT counts requests, not
                # seconds. drive.py warms up before every run, as its queues need to fill.
                run_wrk(self.wrk_request(name), self.scenario_warmup, max(self.concurrencies), self.load_cpu)
            if name in DRIVE:
                secs = login_seconds(self.duration, c) if name == "login" else self.duration
                r = self.steady(lambda: run_drive(name, self.prep_file, secs, self.warmup, c, self.load_cpu))
            else:
                r = self.steady(lambda: run_wrk(self.wrk_request(name), self.duration, c, self.load_cpu))
            self.results.append(r)

    def wrk_request(self, name: str) -> dict:
        return next(x for x in self.fresh_prep()["wrk"] if x["name"] == name)

    def steady(self, measure_once) -> dict:
        """measure_once() with CPU accounting, repeated while disturbed (see __init__)."""
        attempts = []
        for _ in range(1 + self.retries):
            r = self.accounted(measure_once)
            attempts.append(r)
            log(f"  {r['rps']} /s, p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms, errors {r['errors']}"
                + (f" {r['error_kinds']}" if r["errors"] else "")
                + (f", {r['busy_retries']} retries after 'busy'" if r.get("busy_retries") else "")
                + (f", server CPU {r['server_cpu']}" if "server_cpu" in r else "")
                + (f", other CPU {r['foreign_cpu']}" if "foreign_cpu" in r else ""))
            if r.get("foreign_cpu", 0.0) <= self.foreign_max or self.retry_budget[0] <= 0:
                break
            self.retry_budget[0] -= 1
            log("  disturbed: something else took the server's core; once more")
        best = min(attempts, key=lambda x: x.get("foreign_cpu", 0.0))
        best["attempts"] = len(attempts)
        return best

    def accounted(self, measure_once) -> dict:
        cpu = self.server_cpu_seconds or (lambda: 0.0)
        core = self.core_times or (lambda: (0.0, 0.0))
        cpu0, (busy0, steal0), t0 = cpu(), core(), time.monotonic()
        r = measure_once()
        # For drive.py this spans its warm-up and set-up too: an approximation.
        secs, used, (busy1, steal1) = time.monotonic() - t0, cpu() - cpu0, core()
        if self.server_cpu_seconds:
            r["server_cpu"] = round(used / secs, 2)
            if self.core_times:
                r["foreign_cpu"] = round(max(0.0, busy1 - busy0 - used) / secs, 2)
                r["steal_cpu"] = round((steal1 - steal0) / secs, 2)
        return r

    def doc(self) -> dict:
        return {"flavor": self.flavor, "base": self.base, "when": self.when, "duration": self.duration,
                "warmup": self.warmup, "concurrencies": self.concurrencies, "load_cpu": self.load_cpu,
                "checks": self.prep.get("checks") if self.prep else None, "results": self.results,
                "burst": self.burst, **{n: self.floods.get(n) for n in FLOODS}}


def run_all(base: str, flavor: str, scenarios: list[str], concurrencies: list[int], duration: float,
            warmup: float, load_cpu: str, out_dir: str, scenario_warmup: float | None = None) -> dict:
    """Every scenario at every concurrency against the one server at `base`."""
    benchlib.wait_ready(base)
    t = Target(flavor, base, flavor, concurrencies, duration, warmup, load_cpu, out_dir,
               scenario_warmup=scenario_warmup)
    for name in scenarios:
        t.run(name)
    return t.doc()


def fmt(v) -> str:
    return "-" if v is None else (f"{v:.2f}" if isinstance(v, float) else str(v))


def table(doc: dict) -> str:
    rows = ["| scenario | c | req/s | p50 ms | p99 ms | errors | note |", "|---|---:|---:|---:|---:|---:|---|"]
    for r in doc["results"]:
        note = "; ".join(f"{k.replace('_', ' ')} {r[k]}" for k in ("server_cpu", "driver_cpu") if k in r)
        rows.append(f"| {r['name']} | {r['concurrency']} | {r['rps']:.1f} | {fmt(r['p50_ms'])} | "
                    f"{fmt(r['p99_ms'])} | {r['errors']} | {note} |")
    for name in FLOODS:
        f = doc.get(name)
        if not f:
            continue
        u = f["flood"]["legit"]
        rows.append(f"| {f['cc']} idle ({name}) | {f['cc_concurrency']} | {f['idle']['rps']:.1f} | "
                    f"{fmt(f['idle']['p50_ms'])} | {fmt(f['idle']['p99_ms'])} | {f['idle']['errors']} | |")
        rows.append(f"| {f['cc']} during {name} | {f['cc_concurrency']} | {f['during']['rps']:.1f} | "
                    f"{fmt(f['during']['p50_ms'])} | {fmt(f['during']['p99_ms'])} | {f['during']['errors']} | "
                    f"guesses {f['flood']['flood']} |")
        rows.append(f"| user login during {name} | 1 | - | {fmt(u['p50_ms'])} | max {fmt(u['max_ms'])} | "
                    f"{u['errors']} | {u['retries']} retries |")
    b = doc.get("burst")
    if b:
        rows.append(f"| {b['cc']} idle | {b['cc_concurrency']} | {b['idle']['rps']:.1f} | "
                    f"{fmt(b['idle']['p50_ms'])} | {fmt(b['idle']['p99_ms'])} | {b['idle']['errors']} | |")
        rows.append(f"| {b['cc']} during logins | {b['cc_concurrency']} | {b['during']['rps']:.1f} | "
                    f"{fmt(b['during']['p50_ms'])} | {fmt(b['during']['p99_ms'])} | {b['during']['errors']} | "
                    f"{b['logins']['rps']} logins/s at c={b['login_concurrency']} |")
    return "\n".join(rows)


def parse_concurrencies(text: str) -> list[int]:
    cs = [int(x) for x in text.split(",") if x.strip()]
    if not cs or any(not 0 < c <= 1024 for c in cs):
        raise SystemExit("concurrency: a comma list of values in (0, 1024]")
    return cs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--flavor", required=True, choices=sorted(benchlib.FLAVORS))
    ap.add_argument("--base", required=True)
    ap.add_argument("--duration", type=float, default=1.0, help="seconds per run (recorded)")
    ap.add_argument("--warmup", type=float, default=0.5, help="seconds before each drive.py run (discarded)")
    ap.add_argument("--scenario-warmup", type=float, default=2.0,
                    help="seconds of wrk load before the first run of each wrk scenario (discarded)")
    ap.add_argument("--concurrency", default="1,16,64", help="comma list")
    ap.add_argument("--load-cpu", default="1", help="taskset -c value for the load generator")
    ap.add_argument("--only", default=",".join(ALL), help=f"comma list out of {','.join(ALL)}")
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    a = ap.parse_args()
    if not (0 < a.duration <= 300 and 0 <= a.warmup <= 60):
        raise SystemExit("duration in (0, 300], warmup in [0, 60]")
    if urllib.parse.urlsplit(a.base).hostname not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit("load goes to loopback only")
    if not shutil.which("wrk"):
        raise SystemExit("wrk not found (Debian: apt-get install -y wrk)")
    wanted = [s for s in ALL if s in set(a.only.split(","))]
    doc = run_all(a.base, a.flavor, wanted, parse_concurrencies(a.concurrency), a.duration, a.warmup,
                  a.load_cpu, a.out, scenario_warmup=a.scenario_warmup)
    out_file = os.path.join(a.out, f"{a.flavor}-{doc['when']}.json")
    with open(out_file, "w") as f:
        json.dump(doc, f, indent=2)
    print(table(doc))
    print(f"\nwritten: {out_file}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
