#!/usr/bin/env python3
"""Render a bench/suite.py result: markdown tables, the target verdicts and an SVG chart.

  python3 bench/report.py bench/results/suite-<time>.json            # print the markdown
  python3 bench/report.py bench/results/suite-<time>.json --publish  # also update the files below

Publishing appends the full report to bench/RESULTS.md, draws bench/results/latest.svg and
replaces the README.md section between the bench markers with the summary and the chart.
Stdlib only; the SVG is written by hand.
"""

from __future__ import annotations

import argparse
import html
import json
import math
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
RESULTS_MD = os.path.join(HERE, "RESULTS.md")
SVG = os.path.join(HERE, "results", "latest.svg")
README = os.path.join(ROOT, "README.md")
README_START = "<!-- bench:start (written by bench/report.py; edit there) -->"
README_END = "<!-- bench:end -->"

SCENARIOS = [
    ("cc_rs256", "client_credentials, RS256 token"),
    ("cc_es256", "client_credentials, ES256 token"),
    ("cc_eddsa", "client_credentials, EdDSA token"),
    ("code", "code + PKCE: authorize + token"),
    ("refresh", "refresh with rotation"),
    ("introspect", "introspection"),
    ("userinfo", "userinfo"),
    ("discovery", "discovery document"),
    ("jwks", "JWKS"),
    ("login", "password login (login page)"),
]
NAMES = dict(SCENARIOS)
LATCHKEYS = [("latchkey-postgres", "Latchkey (Postgres)"), ("latchkey-sqlite", "Latchkey (SQLite)")]
PEER = "peer"
# Which ceiling from `latchkey ceilings` (src/ceilings.rs) bounds a scenario: one signature (or one argon2
# verification) per operation, on the one core the server has.
LIMIT = {"cc_rs256": ("rs256", "RS256 signatures/s"), "cc_es256": ("es256", "ES256 signatures/s"),
         "cc_eddsa": ("eddsa", "Ed25519 signatures/s"), "login": ("argon2", "argon2id verifications/s")}
RSS_IDLE_MAX, RSS_LOAD_MAX = 40.0, 100.0
# The flood (issue: "legitimate login latency and client_credentials p99 while 1,000 abandoned
# password guesses arrive, and peak RSS"). The targets are judged on "flood", the issue's attack
# (all guesses from one address); "flood_spread" (one address per guess) gets the same figures
# and no verdicts: see SPREAD_NOTE.
FLOOD_LOGIN_MAX_MS, FLOOD_P99_RATIO, RSS_FLOOD_MAX = 2000.0, 2.0, 150.0
FLOODS = [("flood", " from one address (the issue's attack; the flood targets are judged on it)"),
          ("flood_spread", ", each from its own address (no verdicts)")]
SPREAD_NOTE = (
    "No first-come queue can promise one user a slot when many addresses together send more guesses "
    "than the hashing threads can verify: per-address limits do not slow a flood whose every guess comes "
    "from a new address, and the user's login is one more arrival among hundreds a second. What Latchkey "
    "does instead: a password check that finds the hashing queue full is answered at once, before it "
    "does any store work "
    "(503 temporarily_unavailable with Retry-After on the token endpoint, a 'busy' page on the login "
    "page, where the user can submit again); a queued check whose caller has gone is dropped unhashed; "
    "and memory stays bounded (one argon2 buffer per hashing thread, a fixed queue), as does the token "
    "endpoint's latency, since hashing runs at idle priority.")


# --- reading a suite document ------------------------------------------------------------

def runs(suite: dict, server: str, scenario: str) -> list[dict]:
    doc = suite["servers"].get(server)
    return [r for r in doc["results"] if r["name"] == scenario] if doc else []


def at(suite: dict, server: str, scenario: str, c: int) -> dict | None:
    return next((r for r in runs(suite, server, scenario) if r["concurrency"] == c), None)


def peak(suite: dict, server: str, scenario: str) -> dict | None:
    """The run with the most requests/s: the server's capacity for this scenario."""
    rs = runs(suite, server, scenario)
    return max(rs, key=lambda r: r["rps"]) if rs else None


def ceiling(suite: dict, key: str, per: str = "wall") -> float | None:
    """A `latchkey ceilings` rate: per wall-clock second ("wall") or per CPU-second ("cpu")."""
    v = suite["sign"][key]
    return v.get(per) if isinstance(v, dict) else (v if per == "wall" else None)


def per_cpu(r: dict | None) -> float | None:
    """Requests per second of CPU the server got: comparable with the ceilings' per-CPU rate
    even when the core was shared (then wall-clock rates of both are depressed, unequally)."""
    return r["rps"] / r["server_cpu"] if r and r.get("server_cpu") else None


def ratio(a: dict | None, b: dict | None) -> float | None:
    return a["rps"] / b["rps"] if a and b and b["rps"] else None


def num(v, digits: int = 0) -> str:
    if v is None:
        return "-"
    return f"{v:,.{digits}f}"


def ms(v) -> str:
    return "-" if v is None else (f"{v:.2f}" if v < 100 else f"{v:.0f}")


def x(v) -> str:
    return "-" if v is None else (f"{v:.1f}x" if v < 100 else f"{v:.0f}x")


# --- targets -------------------------------------------------------------------------------

def targets(suite: dict, server: str) -> list[tuple[str, bool | None, str]]:
    """(target, met, figures) for one Latchkey backend; met is None when it was not measured."""
    out = []
    has = suite["servers"].get(server)
    if not has:
        return out

    def cmp_peer(names: list[str], factor: float, label: str):
        parts, ok = [], True
        for n in names:
            mine, theirs = peak(suite, server, n), peak(suite, PEER, n)
            r = ratio(mine, theirs)
            rc = per_cpu(mine) / per_cpu(theirs) if per_cpu(mine) and per_cpu(theirs) else None
            judged = rc if rc is not None else r
            parts.append(f"{n} {x(rc)} per CPU-second (wall clock {x(r)})" if rc else f"{n} {x(r)}")
            ok = ok and judged is not None and judged >= factor
        measured = all(peak(suite, server, n) and peak(suite, PEER, n) for n in names)
        out.append((label, ok if measured else None, ", ".join(parts)))

    def vs_ceiling(scenario: str, key: str, goal: float, label: str, unit: str, digits: int):
        """Judged per CPU-second when both sides have it (robust on a shared core), else per
        wall-clock second; both are shown."""
        r = peak(suite, server, scenario)
        wall = r["rps"] / ceiling(suite, key) if r else None
        cw, cc = ceiling(suite, key), ceiling(suite, key, "cpu")
        cpu = per_cpu(r) / cc if per_cpu(r) and cc else None
        judged = cpu if cpu is not None else wall
        pct = lambda v: "-" if v is None else f"{v:.0%}"  # noqa: E731
        text = f"{num(r and r['rps'], digits)} of {num(cw, digits)} {unit}/s = {pct(wall)}"
        if cpu is not None:
            text += f"; per CPU-second {num(per_cpu(r), digits)} of {num(cc, digits)} = {pct(cpu)}"
        out.append((label, None if judged is None else judged >= goal, text))

    vs_ceiling("cc_rs256", "rs256", 0.8, "client_credentials RS256 >= 80% of the raw RS256 signing rate",
               "signatures", 0)
    cmp_peer(["cc_es256", "cc_eddsa"], 8, "client_credentials ES256 and EdDSA >= 8x the peer")
    p99s = {n: (at(suite, server, n, 64) or {}).get("p99_ms") for n in ("cc_es256", "cc_eddsa")}
    out.append(("client_credentials ES256 and EdDSA p99 < 5 ms at c=64",
                None if None in p99s.values() else all(v < 5 for v in p99s.values()),
                ", ".join(f"{n} {ms(v)} ms" for n, v in p99s.items())))
    cmp_peer(["code", "refresh"], 5, "code+PKCE and refresh >= 5x the peer")
    cmp_peer(["introspect", "userinfo"], 5, "introspection and userinfo >= 5x the peer")
    vs_ceiling("login", "argon2", 0.9, "password logins >= 90% of the argon2 rate at the configured parameters",
               "verifications", 1)
    b = burst_view(suite, server)
    out.append(("client_credentials p99 during a login burst <= 2x idle",
                None if not b or b["p99_ratio"] is None else b["p99_ratio"] <= 2,
                "-" if not b else f"{b['cc']} c={b['cc_concurrency']}: p99 {ms(b['idle']['p99_ms'])} ms idle, "
                f"{ms(b['during']['p99_ms'])} ms during {num(b['logins']['rps'], 1)} logins/s "
                f"({x(b['p99_ratio'])}); req/s {num(b['idle']['rps'])} -> {num(b['during']['rps'])}"))
    f = flood_view(suite, server)
    u = f and f["flood"]["legit"]
    out.append((f"a user's login completes within {FLOOD_LOGIN_MAX_MS / 1000:.0f} s during a flood of abandoned "
                f"password guesses from one address",
                None if not u else bool(u["ops"]) and not u["errors"] and u["max_ms"] <= FLOOD_LOGIN_MAX_MS,
                "-" if not u else f"{u['ops']} logins: p50 {ms(u['p50_ms'])} ms, max {ms(u['max_ms'])} ms; "
                f"{u['retries']} retries after 'busy' ({u['ops_retried']} logins retried); {u['errors']} errors"
                + (f" {u['error_kinds']}" if u["errors"] else "")))
    out.append((f"client_credentials p99 during the one-address flood <= {FLOOD_P99_RATIO:.0f}x idle",
                None if not f or f["p99_ratio"] is None else f["p99_ratio"] <= FLOOD_P99_RATIO,
                "-" if not f else f"{f['cc']} c={f['cc_concurrency']}: p99 {ms(f['idle']['p99_ms'])} ms idle, "
                f"{ms(f['during']['p99_ms'])} ms during the flood ({x(f['p99_ratio'])}); "
                f"req/s {num(f['idle']['rps'])} -> {num(f['during']['rps'])}"))
    hwm = f and (f["flood"].get("memory_after") or {}).get("VmHWM")
    out.append((f"RSS < {RSS_FLOOD_MAX:.0f} MB at the end of the one-address flood",
                None if hwm is None else hwm < RSS_FLOOD_MAX,
                "-" if hwm is None else f"peak {num(hwm, 1)} MiB (before the flood "
                f"{num(f['flood']['memory_before']['VmHWM'], 1)} MiB; now {num(f['flood']['memory_after']['VmRSS'], 1)})"))
    m = has.get("memory_mib", {})
    idle, end = m.get("idle", {}).get("VmHWM"), m.get("end", {}).get("VmHWM")
    out.append(("RSS < 40 MB idle", None if idle is None else idle < RSS_IDLE_MAX, f"peak {num(idle, 1)} MiB"))
    pre = m.get("before_login", {}).get("VmHWM")
    # The flood has its own memory target; "under load" is the run before it.
    before = next((k for k in ("before_flood", "before_flood_spread") if k in m), None)
    loaded = m[before].get("VmHWM") if before else end
    out.append(("RSS < 100 MB under load", None if loaded is None else loaded < RSS_LOAD_MAX,
                f"peak {num(loaded, 1)} MiB over the whole run"
                + (" before the floods" if before else "")
                + f" (before the login scenarios: {num(pre, 1)} MiB)"))
    return out


def flood_view(suite: dict, server: str, name: str = "flood") -> dict | None:
    """The figures of a flood ("flood" or "flood_spread"), "idle" chosen as in burst_view: the
    lowest p99 of the flood's own idle run, the main run of the same scenario and concurrency
    and the burst's idle run."""
    doc = suite["servers"].get(server) or {}
    f = doc.get(name)
    if not f:
        return None
    idle = f["idle"]
    b = doc.get("burst") or {}
    for other in (at(suite, server, f["cc"], f["cc_concurrency"]),
                  b.get("idle") if (b.get("cc"), b.get("cc_concurrency")) == (f["cc"], f["cc_concurrency"]) else None):
        if other and other["p99_ms"] and (idle["p99_ms"] is None or other["p99_ms"] < idle["p99_ms"]):
            idle = other
    ratio_p99 = f["during"]["p99_ms"] / idle["p99_ms"] if idle["p99_ms"] and f["during"]["p99_ms"] else None
    return {**f, "idle": idle, "p99_ratio": ratio_p99}


def overlap(g: dict) -> str:
    """The slowest login that overlapped the client_credentials run, and the slowest that did not:
    hashing runs at SCHED_IDLE by default, so a saturating token load stops it."""
    win, logins = g.get("cc_window_s"), g["legit"].get("logins")
    if not win or not logins:
        return ""
    inside = [m for t, m, _ in logins if t < win[1] and t + m / 1000 > win[0]]
    outside = [m for t, m, _ in logins if not (t < win[1] and t + m / 1000 > win[0])]
    return f"; max {ms(max(inside) if inside else None)} ms beside the cc load, {ms(max(outside) if outside else None)} ms without"


def flood_fates(suite: dict, g: dict) -> dict:
    """What became of the guesses. The attacker sees an answer (503 busy, 400 after a check,
    400 refused unchecked) or nothing before it gives up. Whether an abandoned guess was hashed
    anyway is estimated from the CPU time of the server's argon2 threads over the flood,
    divided by the CPU time of one verification (`latchkey ceilings`), less the user's logins
    (one verification each; a busy answer costs none)."""
    kinds = g["flood"]
    out = {"busy": kinds.get("busy", 0), "checked": kinds.get("checked", 0), "abandoned": kinds.get("abandoned", 0),
           "in_flight": kinds.get("in_flight", 0), "locked": kinds.get("locked", 0),
           "other": sum(v for k, v in kinds.items() if k not in ("busy", "checked", "abandoned", "in_flight", "locked"))}
    rate = ceiling(suite, "argon2", "cpu")
    if g.get("hash_cpu_s") is not None and rate:
        hashes = g["hash_cpu_s"] * rate
        user = g["legit"]["ops"] + g["legit_before"]["ops"]
        flood_hashed = max(0.0, hashes - user)
        out["hashes"] = round(hashes)
        out["hashed_after_abandon"] = round(max(0.0, min(out["abandoned"], flood_hashed - out["checked"])))
        out["dropped"] = out["abandoned"] - out["hashed_after_abandon"]
    return out


def flood_md(suite: dict) -> str:
    parts = [flood_table(suite, name, title) for name, title in FLOODS]
    return "\n\n".join(p for p in parts if p)


def flood_table(suite: dict, name: str, title: str) -> str:
    rows = ["| server | cc p99 idle | cc p99 during the flood | cc req/s idle -> during | guesses | 503 busy "
            "| answered after a check | refused unchecked: in flight / locked "
            "| abandoned: hashed anyway / dropped unhashed | token endpoint answered "
            "| user login p50 / max | retries | RSS peak before -> after the flood |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|"]
    first = None
    for srv, label in LATCHKEYS:
        f = flood_view(suite, srv, name)
        if not f:
            continue
        first = first or f
        g, u = f["flood"], f["flood"]["legit"]
        fate = flood_fates(suite, g)
        mb, ma = g.get("memory_before") or {}, g.get("memory_after") or {}
        rows.append(" | ".join([
            f"| {label}", f"{ms(f['idle']['p99_ms'])} ms", f"{ms(f['during']['p99_ms'])} ms ({x(f['p99_ratio'])})",
            f"{num(f['idle']['rps'])} -> {num(f['during']['rps'])}",
            f"{g['guesses']} in {g['sent_in_s']:.1f} s", str(fate["busy"]),
            str(fate["checked"]) + (f", other {fate['other']}" if fate["other"] else ""),
            f"{fate['in_flight']} / {fate['locked']}",
            f"{fate['abandoned']}: ≈{fate.get('hashed_after_abandon', '?')} / ≈{fate.get('dropped', '?')}",
            ", ".join(f"{k}: {v}" for k, v in sorted(g.get("token_answers", {}).items()) if k != "200") or "-",
            f"{ms(u['p50_ms'])} / {ms(u['max_ms'])} ms ({u['ops']} logins{', %d errors' % u['errors'] if u['errors'] else ''}"
            f"{overlap(g)})",
            f"{u['retries']}", f"{num(mb.get('VmHWM'), 1)} -> {num(ma.get('VmHWM'), 1)} MiB |"]))
    if not first:
        return ""
    g = first["flood"]
    addresses = g.get("attacker_addresses", g["guesses"])
    where = (f"all from one address, {g.get('attacker_address', '?')}" if addresses == 1 else
             f"each from its own address, {g.get('attacker_address', 'in 127.18.0.0/16')}")
    hash_cpu = [f"{label.split('(')[1].rstrip(')')} {num(v['flood'].get('hash_cpu_s'), 2)} s"
                for k, label in LATCHKEYS if (v := flood_view(suite, k, name))]
    return f"**`{name}`: {g['guesses']} abandoned password guesses{title}**\n\n" + "\n".join(rows) + (
        f"\n\n{first['cc']} at c={first['cc_concurrency']} alone, then while {g['guesses']} password-grant "
        f"guesses (a valid client, unknown usernames, a new connection each, {where}) arrive at an even rate, "
        f"each abandoned after {g['abandon_after_s']} s without an answer; meanwhile one user logs in through the "
        f"login page over and over from {g['legit_address']}, submitting again about {g['retry_delay_s']} s after "
        f"a 'busy' page (the retries count in the login's time); \"beside the cc load\": the logins that "
        f"overlapped the {first['cc']} run. \"Token endpoint answered\" is Latchkey's own count (/metrics) of its "
        f"non-200 answers over the flood (the 200s are the {first['cc']} requests): an abandoned guess the server "
        f"dropped was never answered. Hashed anyway / dropped: estimated from the CPU time of the argon2 threads "
        f"over the flood ({', '.join(hash_cpu)}) at {num(ceiling(suite, 'argon2', 'cpu'), 1)} verifications per "
        f"CPU-second, less one per user login." + ("" if addresses == 1 else f"\n\n{SPREAD_NOTE}"))


def burst_view(suite: dict, server: str) -> dict | None:
    """The burst figures, with "idle" the better (lower p99) of the burst's own idle run and the
    same scenario at the same concurrency from the main runs: a p99 at saturation is queueing,
    so one hiccup of the shared host in the single idle run would otherwise pass for a met
    target."""
    doc = suite["servers"].get(server) or {}
    b = doc.get("burst")
    if not b:
        return None
    idle = b["idle"]
    main = at(suite, server, b["cc"], b["cc_concurrency"])
    if main and main["p99_ms"] and (idle["p99_ms"] is None or main["p99_ms"] < idle["p99_ms"]):
        idle = main
    ratio_p99 = b["during"]["p99_ms"] / idle["p99_ms"] if idle["p99_ms"] and b["during"]["p99_ms"] else None
    return {**b, "idle": idle, "p99_ratio": ratio_p99}


def verdict(met: bool | None) -> str:
    return {True: "**met**", False: "**not met**", None: "not measured"}[met]


# --- markdown --------------------------------------------------------------------------------

def retried(suite: dict) -> int:
    return sum(r.get("attempts", 1) - 1 for d in suite["servers"].values() for r in d["results"])


def warmups(suite: dict) -> str:
    """The wrk warm-up per scenario: the peer's (node's JIT needs it) and Latchkey's. Older suites
    recorded one value for both."""
    w = suite.get("scenario_warmup", suite["warmup"])
    if suite.get("latchkey_scenario_warmup") is None:
        return f"{w} s"
    return f"{w} s on the peer, {suite['latchkey_scenario_warmup']} s on Latchkey"


def header(suite: dict) -> str:
    s = suite["sign"]
    lines = [
        f"- when: {suite['when']}; commit `{suite['commit']}`{' (with uncommitted changes)' if suite['dirty'] else ''}",
        f"- CPU: {suite['cpu']} ({suite['cores']} cores); server pinned to CPU {suite['server_cpu']}, "
        f"load generators (wrk, bench/drive.py) to CPU {suite['load_cpu']}; loopback only",
        f"- each run {suite['duration']} s measured"
        + (" (logins at least 2 s and c/16 s)" if suite.get("login_windows") else "")
        + f", at concurrency {', '.join(map(str, suite['concurrencies']))}; "
        f"warm-up before each wrk scenario {warmups(suite)}, and "
        f"{suite['warmup']} s before each drive.py run; servers interleaved scenario by scenario"
        + (f"; a run is repeated (at most {suite['retries']}x, the least disturbed kept) when other "
           f"processes took more than {suite['foreign_max']:.2f} of the server's core"
           if suite.get("retries") else "")
        + f"; {retried(suite)} runs repeated; load average "
        f"{' / '.join(f'{v:.2f}' for v in suite['loadavg_start'])} at start, "
        f"{' / '.join(f'{v:.2f}' for v in suite.get('loadavg_end', []))} at the end; "
        f"whole run {suite.get('elapsed_s', '?')} s",
        "- ceilings on the server's core, one thread (`latchkey ceilings`, aws-lc-rs / argon2 0.6"
        + ("; each the better of a measurement before and one after the scenarios" if suite.get("sign_runs") else "")
        + "), per wall-clock second (per CPU-second): "
        + ", ".join(f"{label} {num(ceiling(suite, k), d)}/s ({num(ceiling(suite, k, 'cpu'), d)})"
                    for k, label, d in [("rs256", "RS256", 0), ("es256", "ES256", 0), ("eddsa", "Ed25519", 0),
                                        ("argon2", f"argon2id m={s['argon2_memory_kib']} KiB "
                                                   f"t={s['argon2_iterations']} p=1", 1)]),
    ]
    runs = [r for n, d in suite["servers"].items() if n != "latchkey-postgres" for r in d["results"]
            if "foreign_cpu" in r]
    if runs and (max(r["foreign_cpu"] for r in runs) > 0.1 or retried(suite)):
        mean = lambda k: sum(r.get(k, 0.0) for r in runs) / len(runs)  # noqa: E731
        lines.append(f"- **the machine was shared**: something other than the server took "
                     f"{mean('foreign_cpu'):.0%} of the server's core on average during the runs, "
                     f"{max(r['foreign_cpu'] for r in runs):.0%} at worst; {mean('steal_cpu'):.0%} on average was "
                     f"hypervisor steal (other guests on the host), the rest other processes on the machine. "
                     f"Latchkey-on-Postgres runs are not counted, as its database "
                     f"shares the core. Absolute figures are depressed and noisy; requests per CPU-second "
                     f"(what the verdicts use) much less so")
    elif suite["loadavg_start"][0] >= 1.0:
        lines.append(f"- **the machine was not idle**: load average {suite['loadavg_start'][0]:.2f} at the start")
    for name, doc in suite["servers"].items():
        if doc.get("error"):
            lines.append(f"- **{name} failed**: {doc['error']}")
    if suite.get("note"):
        lines.append(f"- note: {suite['note']}")
    return "\n".join(lines)


def full_table(suite: dict) -> str:
    servers = [(k, v) for k, v in LATCHKEYS + [(PEER, "peer")] if k in suite["servers"]]
    head = "| scenario | c |" + "".join(f" {label} req/s | p50 ms | p99 ms | err | CPU server/other |"
                                       for _, label in servers)
    lk = [k for k, _ in LATCHKEYS if k in suite["servers"]]
    has_peer = PEER in suite["servers"]
    if has_peer:
        head += "".join(f" {dict(LATCHKEYS)[k].split('(')[1].rstrip(')')} / peer |" for k in lk)
    ncols = head.count("|") - 1
    rows = [head, "|---|" + "---:|" * (ncols - 1)]
    for key, label in SCENARIOS:
        for c in suite["concurrencies"]:
            cells = [label, str(c)]
            for srv, _ in servers:
                r = at(suite, srv, key, c)
                cells += [num(r and r["rps"], 1 if r and r["rps"] < 100 else 0), ms(r and r["p50_ms"]),
                          ms(r and r["p99_ms"]), num(r and r["errors"]),
                          f"{num(r and r.get('server_cpu'), 2)} / {num(r and r.get('foreign_cpu'), 2)}"]
            if has_peer:
                cells += [x(ratio(at(suite, k, key, c), at(suite, PEER, key, c))) for k in lk]
            rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def summary_table(suite: dict) -> str:
    """One line per scenario: the best req/s of each server (over the concurrencies) and p99 at
    the highest concurrency."""
    cmax = max(suite["concurrencies"])
    servers = [(k, v) for k, v in LATCHKEYS + [(PEER, "peer")] if k in suite["servers"]]
    lk = [k for k, _ in LATCHKEYS if k in suite["servers"]] if PEER in suite["servers"] else []
    head = ("| scenario |" + "".join(f" {label} |" for _, label in servers)
            + "".join(f" {dict(LATCHKEYS)[k].split('(')[1].rstrip(')')} / peer |" for k in lk)
            + " ceiling (1 core) |")
    rows = [head, "|---|" + "---:|" * (head.count("|") - 2)]
    for key, label in SCENARIOS:
        cells = [label]
        for srv, _ in servers:
            p, top = peak(suite, srv, key), at(suite, srv, key, cmax)
            if top and not top["rps"] and top["errors"]:
                p99 = f"c={cmax} stalled: {top['errors']} errors"
            else:
                p99 = f"p99 {ms(top and top['p99_ms'])} ms"
            cells.append("-" if not p else f"{num(p['rps'], 1 if p['rps'] < 100 else 0)} ({p99})")
        cells += [x(ratio(peak(suite, k, key), peak(suite, PEER, key))) for k in lk]
        lim = LIMIT.get(key)
        cells.append(f"{num(ceiling(suite, lim[0]), 1 if key == 'login' else 0)} {lim[1]}" if lim else "")
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows) + (f"\n\nreq/s is the best of c={', '.join(map(str, suite['concurrencies']))} "
                              f"(wall clock); p99 is at c={cmax}. code+PKCE counts one authorize+token pair as "
                              f"one; a login is GET /authorize, the login form and the redirects to the code."
                              + login_note(suite))


def login_note(suite: dict) -> str:
    """The login loops' resubmissions after a 'busy' page (bench/drive.py): each loop logs into
    its own account from its own address, and Latchkey's hashing queue holds a few checks per
    hashing thread, so at higher concurrency most submissions are told the server is busy."""
    parts = []
    for srv, label in LATCHKEYS:
        rs = [r for r in runs(suite, srv, "login") if r.get("busy_retries")]
        if rs:
            parts.append(f"{label} " + ", ".join(f"{num(r['busy_retries'])} at c={r['concurrency']}" for r in rs))
    if not parts:
        return ""
    delay = next(r["retry_delay_s"] for srv, _ in LATCHKEYS for r in runs(suite, srv, "login") if "retry_delay_s" in r)
    return (f" Each login loop is its own user from its own address. Latchkey turns a login away as busy when its "
            f"hashing queue is full (eight checks per hashing thread), and the loop submits it again about "
            f"{delay * 1000:.0f} ms later, within the login's time: " + "; ".join(parts) + " resubmissions.")


def burst_and_memory(suite: dict) -> str:
    rows = ["| server | cc p99 idle | cc p99 during logins | cc req/s idle -> during | logins/s in the burst "
            "| RSS peak at idle | RSS peak before logins | RSS peak, whole run |",
            "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for srv, label in LATCHKEYS + [(PEER, "peer")]:
        doc = suite["servers"].get(srv)
        if not doc:
            continue
        b, m = burst_view(suite, srv), doc.get("memory_mib", {})

        def g(k: str) -> str:
            hwm, rss = m.get(k, {}).get("VmHWM"), m.get(k, {}).get("VmRSS")
            return f"{num(hwm, 1)} MiB" + (f" (now {num(rss, 1)})" if k == "idle" and rss is not None else "")

        if b:
            cells = [f"{ms(b['idle']['p99_ms'])} ms", f"{ms(b['during']['p99_ms'])} ms ({x(b['p99_ratio'])})",
                     f"{num(b['idle']['rps'])} -> {num(b['during']['rps'])}", num(b["logins"]["rps"], 1)]
        else:
            cells = ["-"] * 4
        rows.append(f"| {label} | " + " | ".join(cells + [g("idle"), g("before_login"), g("end")]) + " |")
    b = next((d["burst"] for d in suite["servers"].values() if d.get("burst")), None)
    note = (f"\n\nBurst: {b['cc']} at c={b['cc_concurrency']} alone, then while {b['login_concurrency']} "
            f"login loops run; \"idle\" is the better of that run and the main {b['cc']} run at "
            f"c={b['cc_concurrency']}. RSS is VmHWM of the server process (Postgres's own processes are not "
            f"counted).") if b else ""
    return "\n".join(rows) + note


def targets_md(suite: dict) -> str:
    note = ("Throughput verdicts compare requests per CPU-second the server process actually got "
            "(request rate / its CPU share, which leaves out time taken by other processes and by "
            "the hypervisor), with the wall-clock figures beside them; that is what the server would "
            "do with the core to itself. For Latchkey on Postgres it leaves out the database's own "
            "CPU, which flatters it. Latency and memory verdicts are as measured.\n\n")
    rows = ["| target | " + " | ".join(label for k, label in LATCHKEYS if k in suite["servers"]) + " |"]
    rows.append("|---|" + "---|" * sum(1 for k, _ in LATCHKEYS if k in suite["servers"]))
    per = {k: targets(suite, k) for k, _ in LATCHKEYS if k in suite["servers"]}
    if not per:
        return ""
    first = next(iter(per.values()))
    for i, (name, _, _) in enumerate(first):
        rows.append(f"| {name} | " + " | ".join(f"{verdict(t[i][1])}: {t[i][2]}" for t in per.values()) + " |")
    return note + "\n".join(rows)


def summary_markdown(suite: dict) -> str:
    return "\n\n".join(p for p in [header(suite), summary_table(suite), targets_md(suite), burst_and_memory(suite),
                                   flood_md(suite)] if p)


def results_entry(suite: dict, json_rel: str) -> str:
    return "\n\n".join([
        f"## {suite['when']} (commit {suite['commit']})",
        header(suite),
        "### Peak requests/s per scenario", summary_table(suite),
        "### Targets", targets_md(suite),
        "### Logins against the token endpoint; memory", burst_and_memory(suite),
        *(["### Floods of abandoned password guesses", flood_md(suite)] if flood_md(suite) else []),
        "### Every run", full_table(suite),
        "CPU server/other: the share of its core the server process used during the run (utime+stime "
        "/ wall time; for the drive.py scenarios the span includes their warm-up), and the share "
        "that went to anything else, hypervisor steal included (/proc/stat). Server well below 1 on "
        "a saturating run with little \"other\" means the server waited (on the database, a lock). "
        "Postgres runs as its own unpinned processes: its time on the server's core shows as "
        "\"other\".",
        f"Raw data: [{json_rel}]({json_rel}).",
    ]) + "\n"


# --- SVG -----------------------------------------------------------------------------------

def svg_chart(suite: dict) -> str:
    """Grouped horizontal bars on a log scale (logins at tens per second and discovery at tens
    of thousands share one axis): per scenario the best req/s of each server, and the one-core
    signing or argon2 ceiling where one bounds it."""
    series = [(k, label, color) for (k, label), color in zip(LATCHKEYS + [(PEER, "oidc-provider 9 (peer)")],
                                                            ["#2f5bd3", "#8aa6ec", "#e07b39"])
              if k in suite["servers"]]
    limit_color = "#9a9a9a"
    bar, gap, group_gap = 11, 2, 16
    left, right, top = 230, 90, 70
    width = 900
    plot_w = width - left - right
    groups = []
    vmax, vmin = 1.0, math.inf
    for key, label in SCENARIOS:
        bars = []
        for k, name, color in series:
            p = peak(suite, k, key)
            if p:
                stalled = [r["concurrency"] for r in runs(suite, k, key) if not r["rps"] and r["errors"]]
                bars.append((p["rps"], color, name, f"  stalls at c={min(stalled)}" if stalled else ""))
        if key in LIMIT:
            bars.append((ceiling(suite, LIMIT[key][0]), limit_color, "one-core ceiling", ""))
        if bars:
            groups.append((label, bars))
            vmax = max(vmax, *(b[0] for b in bars))
            vmin = min(vmin, *(b[0] for b in bars if b[0] > 0), vmax)
    low = max(0, math.floor(math.log10(vmin)))  # the axis starts at the decade below the smallest bar
    decades = max(1, math.ceil(math.log10(vmax * 1.05)) - low)
    height = top + sum(len(b) * (bar + gap) + group_gap for _, b in groups) + 40

    def xpos(v: float) -> float:
        return left + plot_w * max(0.0, math.log10(max(v, 1.0)) - low) / decades

    e = html.escape
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="system-ui, -apple-system, Segoe UI, sans-serif" '
           f'font-size="12">',
           f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
           f'<text x="20" y="20" font-size="15" font-weight="600">Requests per second, best of '
           f'c={"/".join(map(str, suite["concurrencies"]))} (log scale)</text>',
           f'<text x="20" y="38" fill="#555">{e(suite["cpu"])}, server on one core; {e(suite["when"])}, '
           f'commit {e(suite["commit"])}</text>']
    lx = 20
    for _, name, color in series + [("", "one-core ceiling (latchkey ceilings)", limit_color)]:
        out.append(f'<rect x="{lx}" y="48" width="12" height="12" fill="{color}"/>'
                   f'<text x="{lx + 16}" y="58">{e(name)}</text>')
        lx += 22 + 7 * len(name)
    y0, y1 = top - 4, height - 30
    for d in range(decades + 1):
        gx = left + plot_w * d / decades
        out.append(f'<line x1="{gx:.1f}" y1="{y0}" x2="{gx:.1f}" y2="{y1}" stroke="#e2e2e2"/>'
                   f'<text x="{gx:.1f}" y="{y1 + 14}" text-anchor="middle" fill="#555">{10 ** (d + low):,}</text>')
    y = top
    for label, bars in groups:
        gh = len(bars) * (bar + gap) - gap
        out.append(f'<text x="{left - 8}" y="{y + gh / 2 + 4:.1f}" text-anchor="end">{e(label)}</text>')
        for v, color, name, warn in bars:
            w = xpos(v) - left
            out.append(f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{bar}" fill="{color}">'
                       f'<title>{e(name)}: {v:,.1f}/s</title></rect>'
                       f'<text x="{left + w + 4:.1f}" y="{y + bar - 2}" font-size="10" fill="#333">'
                       f'{num(v, 1 if v < 100 else 0)}<tspan fill="#c0392b" font-weight="600">{e(warn)}</tspan>'
                       f'</text>')
            y += bar + gap
        y += group_gap - gap
    out.append("</svg>")
    return "\n".join(out) + "\n"


# --- publishing ------------------------------------------------------------------------------

def targets_line(suite: dict) -> str:
    """How many targets each backend met, in one sentence (the table is in RESULTS.md)."""
    parts = []
    for k, label in LATCHKEYS:
        if k not in suite["servers"]:
            continue
        ts = targets(suite, k)
        measured = [t for t in ts if t[1] is not None]
        missed = [t[0] for t in measured if not t[1]]
        part = f"{label}: {len(measured) - len(missed)} of {len(measured)} met"
        if missed:
            part += " (not met: " + "; ".join(missed) + ")"
        parts.append(part)
    return "Targets, " + ". ".join(parts) + "." if parts else ""


def readme_section(suite: dict) -> str:
    # The front door keeps the chart and the headline table; every figure, verdict and the
    # login burst and memory tables are in RESULTS.md, which each run appends to.
    rel_svg = os.path.relpath(SVG, ROOT)
    return "\n\n".join([
        README_START,
        "## Benchmark",
        "`bench/run.sh` measures Latchkey (on Postgres and on SQLite) beside panva's oidc-provider 9 "
        "configured the same way, each server on one pinned core, plus the raw signing and argon2 "
        "rates of that core. [bench/README.md](bench/README.md) explains the scenarios; "
        "[bench/RESULTS.md](bench/RESULTS.md) has every run, with the machine, each target's "
        "figures, logins against the token endpoint, memory, and the analysis of any target "
        f"missed. Latest run: {suite['when']}, commit `{suite['commit']}`.",
        f"![Requests per second per scenario: Latchkey beside oidc-provider and the one-core "
        f"ceilings]({rel_svg})",
        summary_table(suite),
        targets_line(suite),
        README_END,
    ])


def update_readme(section: str) -> None:
    with open(README) as f:
        text = f.read()
    if README_START in text and README_END in text:
        before, rest = text.split(README_START, 1)
        after = rest.split(README_END, 1)[1]
        text = before + section + after
    else:
        anchor = "\n## How it is built"
        text = text.replace(anchor, "\n" + section + "\n" + anchor, 1) if anchor in text \
            else text.rstrip("\n") + "\n\n" + section + "\n"
    with open(README, "w") as f:
        f.write(text)


def publish(suite: dict, json_path: str) -> None:
    if not os.path.exists(RESULTS_MD):
        with open(RESULTS_MD, "w") as f:
            f.write("# Benchmark results\n\nAppended by `bench/run.sh` (bench/report.py), newest last. "
                    "Scenarios and method: [README.md](README.md).\n\n")
    with open(RESULTS_MD, "a") as f:
        f.write("\n" + results_entry(suite, os.path.relpath(json_path, HERE)))
    os.makedirs(os.path.dirname(SVG), exist_ok=True)
    with open(SVG, "w") as f:
        f.write(svg_chart(suite))
    update_readme(readme_section(suite))
    print(f"updated {os.path.relpath(RESULTS_MD, ROOT)}, {os.path.relpath(SVG, ROOT)}, README.md", file=sys.stderr)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("suite_json")
    ap.add_argument("--publish", action="store_true")
    ap.add_argument("--svg", help="only write the chart to this path")
    a = ap.parse_args()
    with open(a.suite_json) as f:
        suite = json.load(f)
    if a.svg:
        with open(a.svg, "w") as f:
            f.write(svg_chart(suite))
        return 0
    print(results_entry(suite, os.path.relpath(a.suite_json, HERE)))
    if a.publish:
        publish(suite, a.suite_json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
