#!/usr/bin/env python3
"""Load driver for the scenarios that need a fresh input per request (stdlib only).

  code     each iteration: GET /authorize (session cookie, fresh PKCE pair) -> code from the
           Location header -> POST /token (authorization_code + code_verifier). One op = the
           two requests; per-step latencies are reported too.
  refresh  each worker keeps its own refresh-token chain (rotated on every use): POST /token
           grant_type=refresh_token with the token the previous answer gave.
  login    a password login as a new browser would do it: GET /authorize with no cookies ->
           (redirects to) the login page -> POST the form with username and password -> follow
           redirects until the one to the client, which carries a code. One op = one password
           check (argon2) plus the requests around it; a fresh cookie jar per op. Each loop is
           its own user (loop i logs in as bench<i>, loop 0 as bench) from its own address
           (127.19.0.1 upwards), as concurrent logins are in real life: Latchkey checks one
           password at a time per account and a few per address (login.max_in_flight_per_ip),
           and refuses the rest, so loops sharing one account or address measure refusals.
           A login page saying the server is busy (Latchkey's hashing queue is full: it holds
           eight checks per hashing thread, so at c=16 most submissions find it full) is
           submitted again after --retry-delay, ±50% (0.05 s here: a load generator keeping the
           queue full, not a user; the jitter keeps retries from coming in waves); the op's
           time includes the waits, and the retries are reported ("busy_retries"). With a
           user's pause of 0.5 s, the five loops just served would take every slot that frees
           and the others would starve (measured: 5 of 16 loops made 59 logins each in 4 s,
           11 made one, after 8-10 retries).
  flood    (Latchkey only) --guesses password-grant guesses (client bench-legacy, unknown
           usernames, a new connection each) from ONE address, 127.17.0.1 (the issue's
           attack), arrive evenly over --duration seconds and are abandoned after --abandon
           seconds without an answer; meanwhile one user logs in through the login page, again
           and again, from 127.0.0.2, resubmitting after --retry-delay (±50%) when the page
           says the server is busy. Reports each guess's fate and the user's login latency
           (retries included).
  flood_spread  the same, but each guess from its own address in 127.18.0.0/16: a
           distributed flood, which per-address limits cannot slow down.

N workers, one keep-alive HTTP/1.1 connection each, raw asyncio streams. Runs --warmup seconds
unrecorded, then --duration seconds recorded; stops by itself. Prints one line
"BENCH_RESULT {json}" (ops/s, http req/s, p50/p90/p99 in ms, errors, driver CPU share).

  python3 bench/drive.py --prep prep.json --scenario code --concurrency 16 --duration 10
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import os
import random
import resource
import secrets
import sys
import time
import urllib.parse
from collections import Counter

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import benchlib  # noqa: E402


class HttpError(Exception):
    pass


class Conn:
    """One HTTP/1.1 keep-alive connection to 127.0.0.1."""

    def __init__(self, host: str, port: int, timeout: float, local: str | None = None):
        self.host, self.port, self.timeout = host, port, timeout
        # The source address (any of 127.0.0.0/8 on Linux): the server sees it as the client's.
        self.local = (local, 0) if local else None
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def close(self):
        if self.writer:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except OSError:
                pass
        self.reader = self.writer = None

    async def request(self, raw: bytes) -> tuple[int, dict, list, bytes]:
        return await asyncio.wait_for(self._request(raw), self.timeout)

    async def _request(self, raw: bytes):
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port, local_addr=self.local)
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers, cookies = {}, []
        for line in lines[1:]:
            if not line:
                continue
            k, _, v = line.partition(":")
            k, v = k.strip().lower(), v.strip()
            if k == "set-cookie":
                cookies.append(v)
            headers[k] = v
        if "content-length" in headers:
            body = await self.reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            parts = []
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                if size == 0:
                    while (await self.reader.readuntil(b"\r\n")) != b"\r\n":
                        pass
                    break
                parts.append(await self.reader.readexactly(size))
                await self.reader.readexactly(2)
            body = b"".join(parts)
        elif status in (204, 304) or 100 <= status < 200:
            body = b""
        else:
            body = await self.reader.read()
            await self.close()
        if headers.get("connection", "").lower() == "close":
            await self.close()
        return status, headers, cookies, body


def build(method: str, path: str, host: str, headers: dict, body: str = "") -> bytes:
    h = [f"{method} {path} HTTP/1.1", f"Host: {host}", "Connection: keep-alive"]
    h += [f"{k}: {v}" for k, v in headers.items()]
    if body or method == "POST":
        h.append(f"Content-Length: {len(body.encode())}")
    return ("\r\n".join(h) + "\r\n\r\n" + body).encode()


def pkce() -> tuple[str, str]:
    v = secrets.token_urlsafe(32)
    return v, base64.urlsafe_b64encode(hashlib.sha256(v.encode()).digest()).rstrip(b"=").decode()


class Stats:
    def __init__(self):
        self.ops: list[float] = []
        self.steps: dict[str, list[float]] = {}
        self.http_requests = 0
        self.errors: Counter = Counter()
        self.retries = self.ops_retried = 0  # login: resubmissions after a "busy" page
        self.recording = False
        # Start time of each worker's op in progress. An op still running at the end that began
        # before the measured window ("unfinished": it took longer than the whole window) is
        # counted as an error: a server stall would otherwise show only as a low rate.
        self.busy: dict[int, float] = {}

    def op(self, total: float, steps: dict[str, float], http_requests: int | None = None):
        if not self.recording:
            return
        self.ops.append(total)
        self.http_requests += len(steps) if http_requests is None else http_requests
        for k, v in steps.items():
            self.steps.setdefault(k, []).append(v)

    def retried(self, n: int):
        if self.recording and n:
            self.retries += n
            self.ops_retried += 1

    def error(self, kind: str):
        if self.recording:
            self.errors[kind] += 1


def pct(sorted_ms: list[float], p: float) -> float | None:
    if not sorted_ms:
        return None
    i = max(0, min(len(sorted_ms) - 1, int(round(p / 100 * len(sorted_ms) + 0.5)) - 1))
    return round(sorted_ms[i], 3)


class Scenario:
    def __init__(self, prep: dict, timeout: float):
        self.prep = prep
        u = urllib.parse.urlsplit(prep["base"])
        if u.hostname not in ("127.0.0.1", "localhost", "::1"):
            raise SystemExit("refusing a non-loopback target")
        self.host, self.port, self.timeout = u.hostname, u.port or 80, timeout
        self.hosthdr = u.netloc
        self.auth_path = urllib.parse.urlsplit(prep["endpoints"]["authorization_endpoint"]).path
        self.token_path = urllib.parse.urlsplit(prep["endpoints"]["token_endpoint"]).path
        self.query = urllib.parse.urlencode(prep["authorize_query"])
        self.web_basic = prep["basic"][benchlib.WEB_CLIENT]
        self.redirect_uri = prep["redirect_uri"]
        self.cookie_names = set(prep["cookie_names"])
        self.login_query = urllib.parse.urlencode(prep["login_query"])
        self.login_fields = prep["login_fields"]

    def conn(self) -> Conn:
        return Conn(self.host, self.port, self.timeout)

    async def get_code(self, c: Conn, cookies: dict) -> tuple[str, str]:
        verifier, challenge = pkce()
        path = (f"{self.auth_path}?{self.query}&code_challenge={challenge}"
                f"&code_challenge_method=S256&state={secrets.token_urlsafe(6)}")
        cookie = "; ".join(f"{k}={v}" for k, v in cookies.items())
        status, headers, set_cookies, body = await c.request(
            build("GET", path, self.hosthdr, {"Cookie": cookie}))
        for sc in set_cookies:  # follow a rolling session cookie
            kv = sc.split(";", 1)[0]
            k, _, v = kv.partition("=")
            if k in self.cookie_names and v:
                cookies[k] = v
        if status not in (302, 303):
            raise HttpError(f"authorize_{status}")
        loc = headers.get("location", "")
        if not loc.startswith(self.redirect_uri):
            raise HttpError("authorize_not_to_client")
        q = urllib.parse.parse_qs(urllib.parse.urlsplit(loc).query)
        if "code" not in q:
            raise HttpError("authorize_no_code")
        return q["code"][0], verifier

    async def exchange(self, c: Conn, code: str, verifier: str) -> bytes:
        body = urllib.parse.urlencode({"grant_type": "authorization_code", "code": code,
                                       "redirect_uri": self.redirect_uri, "code_verifier": verifier})
        status, _, _, rb = await c.request(build("POST", self.token_path, self.hosthdr, {
            "Authorization": self.web_basic, "Content-Type": "application/x-www-form-urlencoded"}, body))
        if status != 200:
            raise HttpError(f"token_{status}")
        return rb

    async def refresh(self, c: Conn, rt: str) -> str:
        body = urllib.parse.urlencode({"grant_type": "refresh_token", "refresh_token": rt})
        status, _, _, rb = await c.request(build("POST", self.token_path, self.hosthdr, {
            "Authorization": self.web_basic, "Content-Type": "application/x-www-form-urlencoded"}, body))
        if status != 200:
            raise HttpError(f"refresh_{status}")
        new = json.loads(rb).get("refresh_token")
        if not new or new == rt:
            raise HttpError("refresh_not_rotated")
        return new


    async def login(self, c: Conn, busy_retry: float | None = None, username: str | None = None) -> tuple[int, int]:
        """One password login through the login page; returns the number of HTTP requests and
        of retries. With `busy_retry` (seconds), a login page that comes back saying the server
        is busy is submitted again after about that pause (±50%), as a user would;
        without it, that is an error. `username`: instead of the prepared one (bench)."""
        jar = benchlib.CookieJar()
        _, challenge = pkce()
        url = (f"{self.prep['base']}{self.auth_path}?{self.login_query}&code_challenge={challenge}"
               f"&code_challenge_method=S256&state={secrets.token_urlsafe(6)}")
        method, form, requests, submitted, retries = "GET", None, 0, False, 0
        while requests < 8 + retries:
            u = urllib.parse.urlsplit(url)
            if (u.hostname, u.port or 80) != (self.host, self.port):
                raise HttpError("login_redirect_elsewhere")
            path = u.path + (f"?{u.query}" if u.query else "")
            headers = {"Cookie": jar.header_for(u.path)} if jar.header_for(u.path) else {}
            body = ""
            if form is not None:
                body = urllib.parse.urlencode(form)
                headers["Content-Type"] = "application/x-www-form-urlencoded"
            status, rh, set_cookies, rb = await c.request(build(method, path, self.hosthdr, headers, body))
            requests += 1
            jar.update(set_cookies, u.path)
            if status in (302, 303):
                loc = urllib.parse.urljoin(url, rh.get("location", ""))
                if loc.startswith(self.redirect_uri):
                    if not submitted:
                        raise HttpError("login_code_without_password")
                    if "code=" not in loc:
                        raise HttpError("login_no_code")
                    return requests, retries
                url, method, form = loc, "GET", None
            elif (status == 200 and not submitted) or (submitted and busy_retry is not None and BUSY in rb):
                if submitted:  # the page again, saying the server is busy: wait and resubmit
                    retries += 1
                    await asyncio.sleep(busy_retry * random.uniform(0.5, 1.5))
                forms = [f for f in benchlib.parse_forms(rb)
                         if any(t == "password" for t, _ in f["inputs"].values())]
                if not forms:
                    raise HttpError("login_page_without_password_form")
                f = forms[0]
                url = urllib.parse.urljoin(url, f["action"] or url)
                method = f["method"].upper()
                form = {k: v for k, (_, v) in f["inputs"].items()}
                form.update(self.login_fields)
                if username:
                    form["username"] = username
                submitted = True
            else:
                raise HttpError(f"login_{status}" + next((f"_{k}" for k, m in REFUSALS if m in rb), ""))
        raise HttpError("login_too_many_steps")


# What Latchkey's login page says when it turns a correct password away unchecked
# (src/login.rs, LoginFailure::page_message).
BUSY = b"The server is very busy right now"
REFUSALS = [("busy", BUSY), ("in_flight", b"Too many sign-in attempts at once"),
            ("locked", b"sign-in is paused"), ("wrong_password", b"Wrong username or password")]


def initial_cookies(prep: dict) -> dict:
    return dict(kv.split("=", 1) for kv in prep["session_cookie"].split("; "))


async def worker_code(sc: Scenario, stats: Stats, stop: asyncio.Event):
    c, cookies = sc.conn(), initial_cookies(sc.prep)
    clock = time.perf_counter
    while not stop.is_set():
        t0 = stats.busy[id(c)] = clock()
        try:
            code, verifier = await sc.get_code(c, cookies)
            t1 = clock()
            rb = await sc.exchange(c, code, verifier)
            if b'"access_token"' not in rb:
                raise HttpError("token_no_access_token")
            t2 = clock()
            stats.op((t2 - t0) * 1000, {"authorize": (t1 - t0) * 1000, "token": (t2 - t1) * 1000})
        except (HttpError, OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError) as e:
            stats.error(str(e) if isinstance(e, HttpError) else type(e).__name__)
            await c.close()
            await asyncio.sleep(0.01)
        finally:
            stats.busy.pop(id(c), None)
    await c.close()


async def new_chain(sc: Scenario, c: Conn, cookies: dict) -> str:
    code, verifier = await sc.get_code(c, cookies)
    rt = json.loads(await sc.exchange(c, code, verifier)).get("refresh_token")
    if not rt:
        raise HttpError("no_refresh_token")
    return rt


async def worker_refresh(sc: Scenario, stats: Stats, stop: asyncio.Event, ready: asyncio.Event, rts: list):
    c, cookies = sc.conn(), initial_cookies(sc.prep)
    rt = rts.pop()
    await ready.wait()
    clock = time.perf_counter
    while not stop.is_set():
        t0 = stats.busy[id(c)] = clock()
        try:
            if rt is None:
                rt = await new_chain(sc, c, cookies)
                continue
            rt = await sc.refresh(c, rt)
            stats.op((clock() - t0) * 1000, {"refresh": (clock() - t0) * 1000})
        except (HttpError, OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError) as e:
            stats.error(str(e) if isinstance(e, HttpError) else type(e).__name__)
            rt = None  # a broken chain starts again (not counted as a refresh)
            await c.close()
            await asyncio.sleep(0.01)
        finally:
            stats.busy.pop(id(c), None)
    await c.close()


def login_address(i: int) -> str:
    """Login loop i's source address, 127.19.0.1 upwards (any of 127.0.0.0/8 is local on
    Linux): each loop is its own client to the per-address limits."""
    n = i + 1
    return f"127.19.{n >> 8}.{n & 255}"


async def worker_login(sc: Scenario, stats: Stats, stop: asyncio.Event, i: int, retry_delay: float):
    c = Conn(sc.host, sc.port, sc.timeout, local=login_address(i))
    user = benchlib.login_user(i)
    clock = time.perf_counter
    while not stop.is_set():
        t0 = stats.busy[id(c)] = clock()
        try:
            n, retries = await sc.login(c, busy_retry=retry_delay, username=user)
            stats.op((clock() - t0) * 1000, {}, http_requests=n)
            stats.retried(retries)
        except (HttpError, OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError) as e:
            stats.error(str(e) if isinstance(e, HttpError) else type(e).__name__)
            await c.close()
            await asyncio.sleep(0.01)
        finally:
            stats.busy.pop(id(c), None)
    await c.close()


async def run(prep: dict, scenario: str, concurrency: int, duration: float, warmup: float, timeout: float,
              retry_delay: float) -> dict:
    sc = Scenario(prep, timeout)
    stats, stop, ready = Stats(), asyncio.Event(), asyncio.Event()
    if scenario == "login":
        tasks = [asyncio.create_task(worker_login(sc, stats, stop, i, retry_delay)) for i in range(concurrency)]
    elif scenario == "code":
        tasks = [asyncio.create_task(worker_code(sc, stats, stop)) for _ in range(concurrency)]
        ready.set()
    elif scenario == "refresh":
        # Each worker's chain starts from its own code flow, before the clock starts.
        c, cookies = sc.conn(), initial_cookies(prep)
        rts = [await new_chain(sc, c, cookies) for _ in range(concurrency)]
        await c.close()
        tasks = [asyncio.create_task(worker_refresh(sc, stats, stop, ready, rts)) for _ in range(concurrency)]
        ready.set()
    else:
        raise SystemExit(f"unknown scenario {scenario}")
    await asyncio.sleep(warmup)
    ru0, w0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    stats.recording = True
    await asyncio.sleep(duration)
    stats.recording = False
    ru1, w1 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    unfinished = sum(1 for t in stats.busy.values() if t < w0)
    if unfinished:
        stats.errors["unfinished"] += unfinished
    stop.set()
    # Ops in flight finish within a moment on a healthy server; a stalled one is not waited for
    # (its ops were counted as unfinished above).
    _, pending = await asyncio.wait(tasks, timeout=2)
    for t in pending:
        t.cancel()
    secs = w1 - w0
    ops = sorted(stats.ops)
    out = {
        "name": scenario, "tool": "drive.py", "concurrency": concurrency, "seconds": round(secs, 3),
        "ops": len(ops), "rps": round(len(ops) / secs, 1),
        "http_rps": round(stats.http_requests / secs, 1),
        "p50_ms": pct(ops, 50), "p90_ms": pct(ops, 90), "p99_ms": pct(ops, 99),
        "max_ms": round(ops[-1], 3) if ops else None,
        "errors": sum(stats.errors.values()), "error_kinds": dict(stats.errors),
        # Near 1.0 means the driver itself, not the server, may be the limit.
        "driver_cpu": round((ru1.ru_utime - ru0.ru_utime + ru1.ru_stime - ru0.ru_stime) / secs, 2),
    }
    if scenario == "login":
        out["busy_retries"], out["ops_retried"], out["retry_delay_s"] = stats.retries, stats.ops_retried, retry_delay
    if scenario == "code":
        out["steps"] = {k: {"p50_ms": pct(sorted(v), 50), "p99_ms": pct(sorted(v), 99)}
                        for k, v in stats.steps.items()}
    return out


# --- flood: abandoned password guesses, a user logging in meanwhile ---------------------------

FLOOD_ADDRESS = "127.17.0.1"  # flood: the one attacker address

FLOOD_CLIENT = "bench-legacy"  # bench/latchkey-bench.toml: registered for the password grant
LEGIT_ADDRESS = "127.0.0.2"


def flood_address(i: int) -> str:
    """flood_spread: guess i's source address, 127.18.0.1 upwards. Linux answers for all of
    127.0.0.0/8 on loopback, so each guess really comes from its own TCP peer address: the
    per-address limits (login.max_in_flight_per_ip, max_failures_per_ip) see 1,000 clients,
    with no trusted_proxies or X-Forwarded-For needed."""
    n = i + 1
    if n >= 1 << 16:
        raise SystemExit("at most 65535 guesses")
    return f"127.18.{n >> 8}.{n & 255}"


def classify_guess(status: int, body: bytes) -> str:
    if status == 503:
        return "busy"
    if status == 400 and b"invalid_grant" in body:
        if b"wrong username or password" in body:
            return "checked"
        if b"at once" in body:
            return "in_flight"
        if b"too many failed attempts" in body:
            return "locked"
    return f"http_{status}"


async def guess(sc: Scenario, i: int, run_id: str, abandon: float, kinds: Counter, answered: list[float],
                basic: str, address: str) -> None:
    """One password-grant guess at an unknown username over a new connection, abandoned (the
    connection closed) if no answer has come within `abandon` seconds."""
    body = urllib.parse.urlencode({"grant_type": "password", "username": f"nobody-{run_id}-{i}",
                                   "password": secrets.token_urlsafe(12)})
    raw = build("POST", sc.token_path, sc.hosthdr, {
        "Authorization": basic, "Content-Type": "application/x-www-form-urlencoded"}, body)
    clock = time.perf_counter
    t0, writer, kind = clock(), None, "abandoned"
    try:
        async with asyncio.timeout(abandon):
            reader, writer = await asyncio.open_connection(sc.host, sc.port, local_addr=(address, 0))
            writer.write(raw)
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0].split(" ", 2)[1])
            length = next((int(v) for k, _, v in (ln.partition(":") for ln in lines[1:])
                           if k.strip().lower() == "content-length"), 0)
            rb = await reader.readexactly(length) if length else b""
            kind = classify_guess(status, rb)
            answered.append((clock() - t0) * 1000)
    except TimeoutError:
        pass  # abandoned: the attacker has moved on
    except (OSError, ValueError, asyncio.IncompleteReadError) as e:
        kind = f"error_{type(e).__name__}"
    finally:
        if writer is not None:
            writer.close()
    kinds[kind] += 1


def login_summary(rows: list[tuple[float, int, float]], errors: Counter) -> dict:
    ms = sorted(r[0] for r in rows)
    return {"ops": len(ms), "p50_ms": pct(ms, 50), "p90_ms": pct(ms, 90),
            "max_ms": round(ms[-1], 3) if ms else None,
            "retries": sum(r[1] for r in rows), "ops_retried": sum(1 for r in rows if r[1]),
            "errors": sum(errors.values()), "error_kinds": dict(errors),
            # Each login: when it started (seconds from the flood's start), its time in ms and
            # its retries.
            "logins": [[round(r[2], 3), round(r[0], 1), r[1]] for r in rows]}


async def run_flood(prep: dict, guesses: int, seconds: float, abandon: float, lead: float,
                    retry_delay: float, timeout: float, spread: bool = False) -> dict:
    """`lead` seconds of the user logging in alone, then `guesses` password guesses arriving at
    an even rate over `seconds` (open loop: the attacker does not wait for the server), each
    abandoned after `abandon` seconds, while the user keeps logging in, one login after the
    other, retrying after about `retry_delay` s whenever the page says the server is busy.
    Logins that start before the last guess is over count as "during" and are waited for.
    The guesses come from FLOOD_ADDRESS, or with `spread` each from its own address."""
    sc = Scenario(prep, timeout)
    basic = benchlib.basic_auth(FLOOD_CLIENT)
    clock = time.perf_counter
    phase = ["before"]
    w0 = clock() + lead  # the flood's start, reset when it really starts
    rows: dict[str, list] = {"before": [], "during": []}
    errors: dict[str, Counter] = {"before": Counter(), "during": Counter()}
    stop = asyncio.Event()

    async def user() -> None:
        c = Conn(sc.host, sc.port, timeout, local=LEGIT_ADDRESS)
        while not stop.is_set():
            ph, t0 = phase[0], clock()
            try:
                _, retries = await sc.login(c, busy_retry=retry_delay)
                rows[ph].append(((clock() - t0) * 1000, retries, t0 - w0))
            except (HttpError, OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError) as e:
                errors[ph][str(e) if isinstance(e, HttpError) else type(e).__name__] += 1
                await c.close()
                await asyncio.sleep(0.01)
        await c.close()

    legit = asyncio.create_task(user())
    await asyncio.sleep(lead)
    kinds: Counter = Counter()
    answered: list[float] = []
    run_id = secrets.token_hex(4)
    ru0, w0, started = resource.getrusage(resource.RUSAGE_SELF), clock(), time.time()
    phase[0] = "during"
    interval, lag, tasks = seconds / guesses, 0.0, []
    for i in range(guesses):
        due = w0 + i * interval
        if (wait := due - clock()) > 0:
            await asyncio.sleep(wait)
        lag = max(lag, clock() - due)
        address = flood_address(i) if spread else FLOOD_ADDRESS
        tasks.append(asyncio.create_task(guess(sc, i, run_id, abandon, kinds, answered, basic, address)))
    sent = clock() - w0
    await asyncio.gather(*tasks)
    w1, ru1 = clock(), resource.getrusage(resource.RUSAGE_SELF)
    stop.set()
    await asyncio.wait([legit], timeout=timeout * 3)
    if not legit.done():
        legit.cancel()
        errors["during"]["unfinished"] += 1
    answered.sort()
    return {
        "name": "flood_spread" if spread else "flood", "tool": "drive.py", "guesses": guesses,
        "attacker_addresses": guesses if spread else 1,
        "attacker_address": f"{flood_address(0)} .. {flood_address(guesses - 1)}" if spread else FLOOD_ADDRESS,
        "abandon_after_s": abandon,
        "sent_in_s": round(sent, 3), "rate": round(guesses / sent, 1) if sent else None,
        "seconds": round(w1 - w0, 3), "max_send_lag_ms": round(lag * 1000, 1), "started_at": started,
        "flood": dict(kinds), "answered_p50_ms": pct(answered, 50), "answered_max_ms": pct(answered, 100),
        "legit_address": LEGIT_ADDRESS, "retry_delay_s": retry_delay,
        "legit": login_summary(rows["during"], errors["during"]),
        "legit_before": login_summary(rows["before"], errors["before"]),
        "driver_cpu": round((ru1.ru_utime - ru0.ru_utime + ru1.ru_stime - ru0.ru_stime) / (w1 - w0), 2),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prep", required=True, help="JSON from bench/lib/prepare.py")
    ap.add_argument("--scenario", required=True, choices=["code", "refresh", "login", "flood", "flood_spread"])
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--warmup", type=float, default=2.0)
    ap.add_argument("--timeout", type=float, default=10.0, help="per request, seconds")
    ap.add_argument("--guesses", type=int, default=1000, help="flood: password guesses in all")
    ap.add_argument("--abandon", type=float, default=0.3, help="flood: seconds before a guess is given up")
    ap.add_argument("--retry-delay", type=float, default=None,
                    help="seconds before submitting a login again when the server said it is busy: "
                         "login 0.05 (load loops), flood 0.5 (the user)")
    a = ap.parse_args()
    if not (0 < a.duration <= 600 and 0 <= a.warmup <= 120 and 0 < a.concurrency <= 1024):
        raise SystemExit("duration must be in (0, 600], warmup in [0, 120], concurrency in (0, 1024]")
    if a.retry_delay is None:
        a.retry_delay = 0.5 if a.scenario.startswith("flood") else 0.05
    with open(a.prep) as f:
        prep = json.load(f)
    if a.scenario.startswith("flood"):
        # --duration: the seconds over which the guesses arrive; --warmup: the user alone first.
        res = asyncio.run(run_flood(prep, a.guesses, a.duration, a.abandon, a.warmup, a.retry_delay, a.timeout,
                                    spread=a.scenario == "flood_spread"))
    else:
        res = asyncio.run(run(prep, a.scenario, a.concurrency, a.duration, a.warmup, a.timeout, a.retry_delay))
    print("BENCH_RESULT " + json.dumps(res), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
