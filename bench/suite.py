#!/usr/bin/env python3
"""The whole benchmark: the signing/argon2 ceilings, then every scenario against Latchkey on
Postgres, Latchkey on SQLite and the oidc-provider peer, then the report.
bench/run.sh builds everything and calls this; run it directly to repeat a part:

  python3 bench/suite.py --latchkey BIN --pg-url URL [--servers peer] [--quick]

All servers run at once, each pinned to --server-cpu, and are measured one at a time with the
load generators on --load-cpu (taskset), scenario by scenario: each scenario runs on every
server before the next one starts (in rotating order), so a burst of outside load on a shared
machine hits all servers alike instead of skewing one server's figures. Memory: VmRSS/VmHWM
from /proc/<pid>/status when all are idle after start-up, right before each server's login
scenario, right before each flood, and at the end (VmHWM then is the peak of the whole run,
logins and floods included).
Writes bench/results/suite-<time>.json, then bench/report.py renders it.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import platform
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "lib"))
import report  # noqa: E402
import run  # noqa: E402

CONFIG = os.path.join(HERE, "latchkey-bench.toml")
PORTS = {"latchkey-postgres": 18080, "latchkey-sqlite": 18081, "peer": 13001}
SERVERS = ["latchkey-postgres", "latchkey-sqlite", "peer"]


def log(msg: str) -> None:
    run.log(msg)


def proc_status(pid: int) -> dict:
    """Resident memory of the server process in MiB: now (VmRSS) and peak so far (VmHWM)."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM"):
                out[k] = round(int(v.split()[0]) / 1024, 1)
    return out


def cpu_seconds(pid: int) -> float:
    """utime + stime of the whole process (all threads), from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def thread_cpu_seconds(pid: int, prefix: str) -> float:
    """utime + stime of the process's threads whose name starts with `prefix` (Latchkey's
    password hashing threads are latchkey-argon2-N), from /proc/<pid>/task/*/stat."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                head, _, rest = f.read().rpartition(")")
        except FileNotFoundError:  # the thread ended meanwhile
            continue
        if head.split("(", 1)[1].startswith(prefix):
            fields = rest.split()
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def core_times(cpus: str) -> tuple[float, float]:
    """(busy, steal) seconds of the given CPUs (a taskset list such as "0" or "0,2") from
    /proc/stat. busy counts user, nice, system, irq and steal: everything that kept the core
    from the server or from idling. softirq is left out: on loopback it is mostly the server's
    own network traffic. steal is the hypervisor running other guests instead of this one."""
    wanted = {f"cpu{c.strip()}" for c in cpus.split(",")}
    busy = steal = 0
    with open("/proc/stat") as f:
        for line in f:
            parts = line.split()
            if parts and parts[0] in wanted:
                user, nice, system, _idle, _iowait, irq, _softirq, st = map(int, parts[1:9])
                busy += user + nice + system + irq + st
                steal += st
    hz = os.sysconf("SC_CLK_TCK")
    return busy / hz, steal / hz


def port_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def cpu_model() -> str:
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def loadavg() -> list[float]:
    with open("/proc/loadavg") as f:
        return [float(x) for x in f.read().split()[:3]]


def git(*args: str) -> str:
    p = subprocess.run(["git", "-C", ROOT, *args], capture_output=True, text=True)
    return p.stdout.strip()


def sign_limits(latchkey: str, cpu: str, seconds: float) -> dict:
    log(f"signing and argon2 ceilings on CPU {cpu} (latchkey ceilings) ...")
    p = subprocess.run(["taskset", "-c", cpu, latchkey, "--config", CONFIG, "ceilings", "--seconds", str(seconds)],
                       capture_output=True, text=True, timeout=120 + 8 * seconds)
    if p.returncode != 0:
        raise RuntimeError(f"latchkey ceilings failed (built without --features bench?): {p.stderr[-2000:]}")
    sys.stderr.write(p.stderr)
    return run.result_line(p.stdout, "BENCH_SIGN")


def best_ceilings(runs: list[dict]) -> dict:
    """Per operation, the measurement with the higher rate per CPU-second (its wall-clock rate
    comes with it)."""
    best = dict(runs[0])
    for r in runs[1:]:
        for k in ("rs256", "es256", "eddsa", "argon2"):
            if (r[k].get("cpu") or r[k]["wall"]) > (best[k].get("cpu") or best[k]["wall"]):
                best[k] = r[k]
    return best


class Server:
    """One server under test, started pinned and stopped at the end (a context manager)."""

    def __init__(self, name: str, cmd: list[str], env: dict, port: int, log_path: str):
        self.name, self.cmd, self.env, self.port, self.log_path = name, cmd, env, port, log_path
        self.proc: subprocess.Popen | None = None

    def __enter__(self):
        if not port_free(self.port):
            raise RuntimeError(f"127.0.0.1:{self.port} is already in use")
        self.log = open(self.log_path, "w")
        # taskset execs the server, so the pid is the server's own (for /proc/<pid>/status).
        self.proc = subprocess.Popen(self.cmd, env=self.env, stdout=self.log, stderr=subprocess.STDOUT,
                                     cwd=ROOT, start_new_session=True)
        return self

    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def memory(self) -> dict:
        if self.proc is None or self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited; see {self.log_path}")
        return proc_status(self.proc.pid)

    def __exit__(self, *exc):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def latchkey_server(name: str, binary: str, cpu: str, db_url: str, data_dir: str, log_dir: str) -> Server:
    port = PORTS[name]
    env = dict(os.environ,
               LATCHKEY_DATABASE_URL=db_url,
               LATCHKEY_DATA_DIR=data_dir,
               # Two Latchkeys run side by side: each its own port and issuer.
               LATCHKEY_BIND=f"127.0.0.1:{port}",
               LATCHKEY_ISSUER=f"http://127.0.0.1:{port}",
               # A fresh master key per run: the bench database is new every time too.
               LATCHKEY_MASTER_KEY=base64.b64encode(secrets.token_bytes(32)).decode(),
               # Per-request logging is off at "warn", as a production deployment would run.
               LATCHKEY_LOG="warn")
    cmd = ["taskset", "-c", cpu, binary, "--config", CONFIG, "serve"]
    return Server(name, cmd, env, port, os.path.join(log_dir, f"{name}.log"))


def peer_server(cpu: str, log_dir: str) -> Server:
    env = dict(os.environ, PORT=str(PORTS["peer"]))
    cmd = ["taskset", "-c", cpu, "node", os.path.join(HERE, "peer", "server.mjs")]
    return Server("peer", cmd, env, PORTS["peer"], os.path.join(log_dir, "peer.log"))


def make_server(name: str, a, work: str) -> Server:
    data_dir = os.path.join(work, name)
    os.makedirs(data_dir)
    if name == "latchkey-postgres":
        return latchkey_server(name, a.latchkey, a.server_cpu, a.pg_url, data_dir, work)
    if name == "latchkey-sqlite":
        db = os.path.join(data_dir, "latchkey.db")
        return latchkey_server(name, a.latchkey, a.server_cpu, f"sqlite://{db}", data_dir, work)
    return peer_server(a.server_cpu, work)


def bench_servers(names: list[str], a, scenarios: list[str], work: str) -> dict:
    docs: dict[str, dict] = {}
    with contextlib.ExitStack() as stack:
        servers = {n: stack.enter_context(make_server(n, a, work)) for n in names}
        targets, memory = {}, {}
        # Shared by all servers: repeats stop when it is spent, so a noisy host cannot stretch
        # the run without bound (steal from other guests can last for minutes).
        retry_budget = [a.retry_budget]
        for n, srv in servers.items():
            run.benchlib.wait_ready(srv.base(), timeout=60)
            targets[n] = run.Target(
                n, srv.base(), "peer" if n == "peer" else "latchkey", a.concurrency, a.duration, a.warmup,
                a.load_cpu, a.out, a.burst_concurrency,
                server_cpu_seconds=lambda pid=srv.proc.pid: cpu_seconds(pid),
                core_times=lambda: core_times(a.server_cpu), retries=a.retries, retry_budget=retry_budget,
                # Postgres's own processes may also run on the server's core and count as
                # "other"; measured, that is a few percent at most, so one threshold fits all.
                foreign_max=a.foreign_max,
                scenario_warmup=a.scenario_warmup if n == "peer" else min(1.0, a.scenario_warmup),
                memory=srv.memory,
                hash_cpu_seconds=lambda pid=srv.proc.pid: thread_cpu_seconds(pid, "latchkey-argon2"),
                flood_retry_delay=a.flood_retry_delay)
        time.sleep(1.0)  # let start-up work (key generation, first-request warm-up) settle
        for n, srv in servers.items():
            memory[n] = {"idle": srv.memory()}
        failed: dict[str, str] = {}
        for i, scenario in enumerate(scenarios):
            order = names[i % len(names):] + names[:i % len(names)]
            for n in order:
                if n in failed:
                    continue
                try:
                    if scenario == "login":
                        memory[n]["before_login"] = servers[n].memory()
                    if scenario in run.FLOODS:
                        memory[n][f"before_{scenario}"] = servers[n].memory()
                    targets[n].run(scenario)
                except Exception as e:  # noqa: BLE001 - one broken server must not lose the others' results
                    log(f"{n} failed: {e!r}; see {servers[n].log_path}")
                    failed[n] = repr(e)
        for n, srv in servers.items():
            doc = targets[n].doc()
            try:
                memory[n]["end"] = srv.memory()
            except RuntimeError as e:  # the server died
                failed.setdefault(n, str(e))
            if n in failed:
                doc["error"] = failed[n]
            doc["memory_mib"] = memory[n]
            docs[n] = doc
    return docs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--latchkey", required=True, help="release binary built with --features bench")
    ap.add_argument("--pg-url", default="postgres://postgres@127.0.0.1:5432/latchkey_bench",
                    help="an empty database, created by bench/run.sh")
    ap.add_argument("--servers", default=",".join(SERVERS), help=f"comma list out of {','.join(SERVERS)}")
    ap.add_argument("--only", default=",".join(run.ALL), help="scenarios, comma list")
    # 1 s per run keeps the whole default suite near 3 minutes, so that a fresh machine has the
    # table within 10 minutes of `bench/run.sh`, the cold build included. A second counts
    # thousands of requests (hundreds of code flows) even at c=1; the machine's drift through
    # the day moves the figures more than a longer run would. Logins get longer windows
    # (run.login_seconds).
    ap.add_argument("--duration", type=float, default=1.0, help="seconds per measured run")
    ap.add_argument("--warmup", type=float, default=0.5, help="seconds of discarded load before each drive.py run")
    ap.add_argument("--scenario-warmup", type=float, default=2.0,
                    help="seconds of discarded wrk load before the first run of each wrk scenario on the "
                         "peer (node's JIT needs them); Latchkey gets at most 1 s, as it has no JIT")
    ap.add_argument("--concurrency", default="1,16,64")
    ap.add_argument("--burst-concurrency", type=int, default=16,
                    help="connections of both the client_credentials and the login load in the burst")
    ap.add_argument("--flood-retry-delay", type=float, default=run.FLOOD_RETRY,
                    help="flood: seconds the user waits before submitting the login form again after a "
                         "'busy' page (the retries count in the login's time)")
    ap.add_argument("--sign-seconds", type=float, default=1.5)
    ap.add_argument("--retries", type=int, default=1,
                    help="repeat a run this often when other processes took more than --foreign-max of the "
                         "server's core (a shared machine)")
    ap.add_argument("--foreign-max", type=float, default=0.25)
    ap.add_argument("--retry-budget", type=int, default=8, help="at most this many repeated runs in all")
    ap.add_argument("--quick", action="store_true",
                    help="a smoke run: 1 s runs, no warm-up, 1 s per ceiling (numbers are rough)")
    ap.add_argument("--server-cpu", default="0")
    ap.add_argument("--load-cpu", default="1")
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    ap.add_argument("--no-report", action="store_true", help="do not touch RESULTS.md, README.md, the SVG")
    ap.add_argument("--note", default="", help="free text recorded with the results (e.g. machine load)")
    a = ap.parse_args()
    if a.quick:
        a.duration, a.warmup, a.scenario_warmup, a.sign_seconds, a.retries = 1, 0, 0, 1.0, 0
    a.concurrency = run.parse_concurrencies(a.concurrency)
    servers = [s for s in a.servers.split(",") if s]
    if unknown := set(servers) - set(SERVERS):
        raise SystemExit(f"unknown servers {unknown}")
    scenarios = [s for s in run.ALL if s in set(a.only.split(","))]
    if not shutil.which("wrk"):
        raise SystemExit("wrk not found (Debian: apt-get install -y wrk)")

    t0 = time.monotonic()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    os.makedirs(a.out, exist_ok=True)
    work = tempfile.mkdtemp(prefix="latchkey-bench-")
    suite = {
        "when": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "stamp": stamp,
        "commit": git("rev-parse", "--short=12", "HEAD"), "dirty": bool(git("status", "--porcelain")),
        "cpu": cpu_model(), "cores": os.cpu_count(), "kernel": platform.release(),
        "server_cpu": a.server_cpu, "load_cpu": a.load_cpu, "duration": a.duration, "warmup": a.warmup,
        "scenario_warmup": a.scenario_warmup, "latchkey_scenario_warmup": min(1.0, a.scenario_warmup),
        "login_windows": "max(duration, 2 s, c/16 s)",
        "retries": a.retries, "foreign_max": a.foreign_max,
        "concurrencies": a.concurrency, "note": a.note, "loadavg_start": loadavg(),
        "sign": sign_limits(a.latchkey, a.server_cpu, a.sign_seconds), "servers": {},
    }
    try:
        suite["servers"] = bench_servers(servers, a, scenarios, work)
        # The ceilings again at the end: the shared machine's speed drifts within minutes (run
        # 5 measured argon2 at 28/s at the start and then logged in 38 times a second). A
        # ceiling is what the core can do, so each is the better of the two measurements.
        suite["sign_runs"] = [suite["sign"], sign_limits(a.latchkey, a.server_cpu, a.sign_seconds)]
        suite["sign"] = best_ceilings(suite["sign_runs"])
    finally:
        suite["loadavg_end"] = loadavg()
        suite["elapsed_s"] = round(time.monotonic() - t0, 1)
        # A --no-report run (a quick look, a partial scenario list) stays out of the
        # repository: its JSON goes beside the server logs.
        out_file = os.path.join(work if a.no_report else a.out, f"suite-{stamp}.json")
        with open(out_file, "w") as f:
            json.dump(suite, f, indent=2)
        log(f"written: {out_file} ({suite['elapsed_s']} s); server logs in {work}")
    print(report.summary_markdown(suite))
    if not a.no_report:
        report.publish(suite, out_file)
    return 0


if __name__ == "__main__":
    sys.exit(main())
