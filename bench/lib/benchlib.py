"""Shared setup for the Latchkey / oidc-provider side-by-side benchmark (Python 3.11, stdlib only).

Given a base URL and a server flavor ("latchkey" or "peer"), `prepare()` logs the bench user in,
gets live tokens and returns everything the load scripts need as one JSON-able dict:

    endpoints         from discovery (token, authorization, introspection, userinfo, jwks, ...)
    basic             Authorization header values per client
    session_cookie    Cookie header that makes GET /authorize answer with a code, no page
    authorize_query   the code+PKCE authorize parameters minus code_challenge/state
    user_token        a user's access token valid at userinfo (and introspectable)
    login_query       the authorize parameters of the "password logins/s" scenario, which
                      drive.py walks through the login page with a fresh cookie jar per op
    wrk               the fixed-request scenarios, ready for bench/lua/request.lua

It also logs each login loop's own account (bench1 .. bench63) in once, so that consent to the
web app is remembered for all of them.

Everything server-specific is in the Flavor classes at the bottom; the protocol part is plain
OAuth 2.0 / OIDC.
"""

from __future__ import annotations

import base64
import hashlib
import html.parser
import http.client
import json
import secrets
import time
import urllib.parse
from dataclasses import dataclass, field

SECRET = "bench-secret-0123456789abcdefghijklmnopqrstuv"
CC_CLIENTS = {"rs256": "bench-rs256", "es256": "bench-es256", "eddsa": "bench-eddsa"}
WEB_CLIENT = "bench-web"
RS_CLIENT = "bench-rs"
USERNAME = "bench"
PASSWORD = "bench-password"
# bench, bench1 .. bench63 (latchkey-bench.toml, peer/server.mjs): one account per concurrent
# login loop, as Latchkey checks one password at a time per account.
LOGIN_USERS = 64
REDIRECT_URI = "http://127.0.0.1:9999/cb"
WEB_SCOPE = "openid profile email offline_access"
CC_SCOPE = "api.read"


def login_user(i: int) -> str:
    """The account of login loop i: bench, bench1, ..., bench63, then round again (loops
    beyond 64 share accounts, and Latchkey then refuses some of their attempts as in flight)."""
    n = i % LOGIN_USERS
    return USERNAME if n == 0 else f"{USERNAME}{n}"


# --- small protocol helpers ----------------------------------------------------------------

def basic_auth(client_id: str, secret: str = SECRET) -> str:
    """RFC 6749 §2.3.1: form-urlencode id and secret, then base64."""
    raw = f"{urllib.parse.quote(client_id, safe='')}:{urllib.parse.quote(secret, safe='')}"
    return "Basic " + base64.b64encode(raw.encode()).decode()


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(32)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def code_from_location(location: str, redirect_uri: str = REDIRECT_URI) -> str:
    if not location.startswith(redirect_uri):
        raise BenchError(f"redirect is not to the client: {location[:200]}")
    q = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)
    if "code" not in q:
        raise BenchError(f"no code in redirect: {location[:200]}")
    return q["code"][0]


class BenchError(Exception):
    pass


# --- a tiny HTTP client with a cookie jar (setup only; the load paths use wrk / drive.py) --

@dataclass
class Cookie:
    name: str
    value: str
    path: str


@dataclass
class CookieJar:
    cookies: dict[tuple[str, str], Cookie] = field(default_factory=dict)

    def update(self, set_cookie_headers: list[str], request_path: str) -> None:
        for line in set_cookie_headers:
            parts = [p.strip() for p in line.split(";")]
            name, _, value = parts[0].partition("=")
            attrs = {k.lower(): v for k, _, v in (p.partition("=") for p in parts[1:])}
            path = attrs.get("path") or request_path.rsplit("/", 1)[0] or "/"
            expired = attrs.get("max-age") == "0" or "1970" in attrs.get("expires", "")
            if expired or value == "":
                self.cookies.pop((name, path), None)
            else:
                self.cookies[(name, path)] = Cookie(name, value, path)

    def header_for(self, path: str) -> str:
        def matches(c: Cookie) -> bool:
            return path == c.path or path.startswith(c.path.rstrip("/") + "/") or c.path == "/"
        chosen = sorted((c for c in self.cookies.values() if matches(c)), key=lambda c: -len(c.path))
        return "; ".join(f"{c.name}={c.value}" for c in chosen)


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def json(self):
        return json.loads(self.body)


class Http:
    """One keep-alive connection to the server under test; never follows redirects."""

    def __init__(self, base: str, timeout: float = 10.0):
        u = urllib.parse.urlsplit(base)
        if u.scheme != "http":
            raise BenchError("the benchmark talks plain HTTP to a local server")
        if u.hostname not in ("127.0.0.1", "localhost", "::1"):
            raise BenchError(f"refusing a non-loopback target: {u.hostname}")
        self.base = base.rstrip("/")
        self.host, self.port, self.timeout = u.hostname, u.port or 80, timeout
        self.conn: http.client.HTTPConnection | None = None
        self.jar = CookieJar()

    def request(self, method: str, url: str, *, form: dict | None = None, headers: dict | None = None,
                cookies: bool = True, body: str | None = None) -> Response:
        if url.startswith("/"):
            url = self.base + url
        u = urllib.parse.urlsplit(url)
        if (u.hostname, u.port or 80) != (self.host, self.port):
            raise BenchError(f"URL outside the server under test: {url}")
        target = u.path + (f"?{u.query}" if u.query else "")
        hdrs = dict(headers or {})
        if body is not None:
            body = body.encode()
        if form is not None:
            body = urllib.parse.urlencode(form).encode()
            hdrs.setdefault("Content-Type", "application/x-www-form-urlencoded")
        if cookies and (c := self.jar.header_for(u.path)):
            hdrs["Cookie"] = c
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            try:
                self.conn.request(method, target, body=body, headers=hdrs)
                r = self.conn.getresponse()
                data = r.read()
                break
            except (ConnectionError, http.client.HTTPException):
                self.conn.close()
                self.conn = None
                if attempt:
                    raise
        if cookies:
            self.jar.update(r.headers.get_all("Set-Cookie") or [], u.path)
        return Response(r.status, list(r.headers.items()), data)

    def absolute(self, location: str) -> str:
        return urllib.parse.urljoin(self.base + "/", location)


class _Forms(html.parser.HTMLParser):
    """Collects <form>s: action, method, inputs (name -> (type, value)), submit buttons."""

    def __init__(self):
        super().__init__()
        self.forms: list[dict] = []

    def handle_starttag(self, tag, attrs):
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append({"action": a.get("action", ""), "method": a.get("method", "get").lower(),
                               "inputs": {}, "buttons": []})
        elif self.forms and tag == "input" and a.get("name"):
            t = a.get("type", "text").lower()
            if t == "submit":
                self.forms[-1]["buttons"].append((a["name"], a.get("value", "")))
            else:
                self.forms[-1]["inputs"][a["name"]] = (t, a.get("value", ""))
        elif self.forms and tag == "button" and a.get("name"):
            self.forms[-1]["buttons"].append((a["name"], a.get("value", "")))


def parse_forms(page: bytes) -> list[dict]:
    p = _Forms()
    p.feed(page.decode("utf-8", "replace"))
    return p.forms


# --- the flow that is the same for every flavor --------------------------------------------

def discover(h: Http) -> dict:
    r = h.request("GET", "/.well-known/openid-configuration", cookies=False)
    if r.status != 200:
        raise BenchError(f"discovery: HTTP {r.status}")
    return r.json()


def path_of(url: str) -> str:
    u = urllib.parse.urlsplit(url)
    return u.path + (f"?{u.query}" if u.query else "")


def authorize_url(endpoints: dict, query: dict, challenge: str, state: str) -> str:
    q = dict(query, code_challenge=challenge, code_challenge_method="S256", state=state)
    return endpoints["authorization_endpoint"] + "?" + urllib.parse.urlencode(q)


def run_authorize(h: Http, flavor: "Flavor", endpoints: dict, query: dict, max_steps: int = 10,
                  username: str = USERNAME) -> tuple[str, str]:
    """GET /authorize and follow it (answering login/consent pages as `username`) until the
    redirect to the client. Returns (code, code_verifier)."""
    verifier, challenge = pkce_pair()
    url = authorize_url(endpoints, query, challenge, secrets.token_urlsafe(8))
    r = h.request("GET", url)
    for _ in range(max_steps):
        if r.status in (301, 302, 303, 307):
            loc = h.absolute(r.header("Location") or "")
            if loc.startswith(REDIRECT_URI):
                return code_from_location(loc), verifier
            r = h.request("GET", loc)
            url = loc
        elif r.status == 200:
            r = flavor.answer_page(h, url, r, username)
        else:
            raise BenchError(f"authorize flow: HTTP {r.status} at {url}: {r.body[:300]!r}")
    raise BenchError("authorize flow: too many steps")


def exchange_code(h: Http, endpoints: dict, code: str, verifier: str) -> dict:
    r = h.request("POST", endpoints["token_endpoint"], cookies=False,
                  headers={"Authorization": basic_auth(WEB_CLIENT)},
                  form={"grant_type": "authorization_code", "code": code,
                        "redirect_uri": REDIRECT_URI, "code_verifier": verifier})
    if r.status != 200:
        raise BenchError(f"code exchange: HTTP {r.status}: {r.body[:300]!r}")
    return r.json()


def refresh(h: Http, endpoints: dict, refresh_token: str) -> dict:
    r = h.request("POST", endpoints["token_endpoint"], cookies=False,
                  headers={"Authorization": basic_auth(WEB_CLIENT)},
                  form={"grant_type": "refresh_token", "refresh_token": refresh_token})
    if r.status != 200:
        raise BenchError(f"refresh: HTTP {r.status}: {r.body[:300]!r}")
    return r.json()


def client_credentials(h: Http, endpoints: dict, client_id: str) -> dict:
    r = h.request("POST", endpoints["token_endpoint"], cookies=False,
                  headers={"Authorization": basic_auth(client_id)},
                  form={"grant_type": "client_credentials", "scope": CC_SCOPE})
    if r.status != 200:
        raise BenchError(f"client_credentials {client_id}: HTTP {r.status}: {r.body[:300]!r}")
    return r.json()


def jwt_header(token: str) -> dict:
    seg = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(seg + "=" * (-len(seg) % 4)))


def prepare(base: str, flavor_name: str, check: bool = True, login_users: bool = True) -> dict:
    """`login_users`: also log each of the login loops' accounts (bench1 .. bench63) in once,
    which grants their consent to bench-web on Latchkey (remembered in its store, so once per
    server is enough) and checks that both servers have all 64 accounts."""
    flavor = FLAVORS[flavor_name]()
    h = Http(base)
    disc = discover(h)
    endpoints = flavor.endpoints(h, disc)

    # Log in once: afterwards the session cookie alone gets codes.
    token_query = flavor.authorize_query("token")
    code, verifier = run_authorize(h, flavor, endpoints, token_query)
    session_cookie = h.jar.header_for(path_of(endpoints["authorization_endpoint"]).split("?")[0])
    if not session_cookie:
        raise BenchError("no session cookie after login")

    prep = {
        "flavor": flavor_name,
        "base": h.base,
        "endpoints": endpoints,
        "basic": {cid: basic_auth(cid) for cid in [*CC_CLIENTS.values(), WEB_CLIENT, RS_CLIENT]},
        "cc_body": urllib.parse.urlencode({"grant_type": "client_credentials", "scope": CC_SCOPE}),
        "session_cookie": session_cookie,
        "cookie_names": [kv.split("=", 1)[0] for kv in session_cookie.split("; ")],
        "authorize_query": token_query,
        "redirect_uri": REDIRECT_URI,
        "user_token": None,
        "login_query": flavor.authorize_query("login"),
        "login_fields": flavor.login_fields(),
    }
    checks = {}
    if check:
        # The code we got at login must exchange (proves PKCE and the token endpoint).
        first = exchange_code(h, endpoints, code, verifier)
        checks["code_exchange"] = {"id_token_alg": jwt_header(first["id_token"])["alg"],
                                   "access_token": flavor.describe_token(first["access_token"]),
                                   "refresh_token": bool(first.get("refresh_token"))}
        if first.get("refresh_token"):
            second = refresh(h, endpoints, first["refresh_token"])
            checks["refresh_rotates"] = second.get("refresh_token") not in (None, first["refresh_token"])
            # Replaying the old one must fail. (This may revoke the whole grant - both servers
            # treat it as theft - so it runs before the tokens the scenarios use are made.)
            # Latchkey answers a replay within its refresh_grace_period (a retry, RFC 9700
            # §4.14.2 allows it) with the same new pair instead; that is fine too.
            old = h.request("POST", endpoints["token_endpoint"], cookies=False,
                            headers={"Authorization": basic_auth(WEB_CLIENT)},
                            form={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]})
            checks["old_refresh_rejected"] = old.status == 400 or (
                old.status == 200 and old.json().get("refresh_token") == second.get("refresh_token"))
        for alg, cid in CC_CLIENTS.items():
            t = client_credentials(h, endpoints, cid)["access_token"]
            checks[f"cc_{alg}_alg"] = jwt_header(t)["alg"]

    # A user access token that userinfo (and introspection) accept.
    c2, v2 = run_authorize(h, flavor, endpoints, flavor.authorize_query("userinfo"))
    user_tokens = exchange_code(h, endpoints, c2, v2)
    prep["user_token"] = user_tokens["access_token"]
    # The jar as it is now (a server may have re-set the session cookie along the way).
    session_cookie = h.jar.header_for(path_of(endpoints["authorization_endpoint"]).split("?")[0])
    prep["session_cookie"] = session_cookie
    prep["cookie_names"] = [kv.split("=", 1)[0] for kv in session_cookie.split("; ")]
    checks["user_token"] = flavor.describe_token(prep["user_token"])
    prep["wrk"] = wrk_scenarios(prep)

    if check:
        for s in prep["wrk"]:
            r = h.request(s["method"], s["url"], cookies=False, headers=s["headers"], body=s["body"] or None)
            checks[f"wrk:{s['name']}"] = r.status
            if s["name"] == "introspect":
                checks["introspect_active"] = r.json().get("active")
        # The session cookie alone must yield a code.
        c3, v3 = run_authorize_with_cookie_only(base, endpoints, token_query, session_cookie)
        checks["cookie_only_code"] = bool(c3)
        bad = [k for k, v in checks.items() if v is False or (k.startswith("wrk:") and v != 200)]
        if bad:
            raise BenchError(f"sanity checks failed: {bad}: {checks}")
    if login_users:
        for i in range(1, LOGIN_USERS):
            run_authorize(Http(base), flavor, endpoints, flavor.authorize_query("login"), username=login_user(i))
        checks["login_users"] = LOGIN_USERS
    prep["checks"] = checks
    return prep


def run_authorize_with_cookie_only(base: str, endpoints: dict, query: dict, cookie: str) -> tuple[str, str]:
    h = Http(base)
    verifier, challenge = pkce_pair()
    r = h.request("GET", authorize_url(endpoints, query, challenge, "x"), cookies=False,
                  headers={"Cookie": cookie})
    if r.status not in (302, 303):
        raise BenchError(f"cookie-only authorize: HTTP {r.status}")
    return code_from_location(h.absolute(r.header("Location") or "")), verifier


def wrk_scenarios(prep: dict) -> list[dict]:
    """The scenarios whose every request is the same: one wrk script serves them all."""
    e, b = prep["endpoints"], prep["basic"]
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    out = []
    for alg, cid in CC_CLIENTS.items():
        out.append({"name": f"cc_{alg}", "method": "POST", "url": e["token_endpoint"],
                    "headers": {**form, "Authorization": b[cid]}, "body": prep["cc_body"]})
    out += [
        {"name": "introspect", "method": "POST", "url": e["introspection_endpoint"],
         "headers": {**form, "Authorization": b[RS_CLIENT]},
         "body": urllib.parse.urlencode({"token": prep["user_token"], "token_type_hint": "access_token"})},
        {"name": "userinfo", "method": "GET", "url": e["userinfo_endpoint"],
         "headers": {"Authorization": f"Bearer {prep['user_token']}"}, "body": ""},
        {"name": "discovery", "method": "GET", "url": e["discovery"], "headers": {}, "body": ""},
        {"name": "jwks", "method": "GET", "url": e["jwks_uri"], "headers": {}, "body": ""},
    ]
    return out


# --- flavors: everything server-specific ---------------------------------------------------

class Flavor:
    name = "?"

    def endpoints(self, h: Http, disc: dict) -> dict:
        keys = ["issuer", "authorization_endpoint", "token_endpoint", "introspection_endpoint",
                "userinfo_endpoint", "jwks_uri", "revocation_endpoint"]
        e = {k: disc.get(k) for k in keys}
        e["discovery"] = h.base + "/.well-known/openid-configuration"
        missing = [k for k, v in e.items() if not v and k != "revocation_endpoint"]
        if missing:
            raise BenchError(f"discovery lacks {missing}")
        return e

    def authorize_query(self, purpose: str) -> dict:
        """purpose: "token" (code+PKCE and refresh scenarios), "userinfo" or "login"."""
        return {"client_id": WEB_CLIENT, "response_type": "code", "redirect_uri": REDIRECT_URI,
                "scope": WEB_SCOPE}

    def answer_page(self, h: Http, url: str, r: Response, username: str = USERNAME) -> Response:
        """A 200 page during /authorize: fill the login form, or approve consent."""
        forms = parse_forms(r.body)
        if not forms:
            raise BenchError(f"authorize flow: page without a form at {url}: {r.body[:200]!r}")
        f = forms[0]
        action = urllib.parse.urljoin(url, f["action"] or url)
        data = {k: v for k, (t, v) in f["inputs"].items()}
        if any(t == "password" for t, _ in f["inputs"].values()):
            data.update(self.login_fields(), username=username)
        else:
            data.update(self.consent_fields(f))
        return h.request(f["method"].upper(), action, form=data)

    def login_fields(self) -> dict:
        return {"username": USERNAME, "password": PASSWORD}

    def consent_fields(self, form: dict) -> dict:
        return dict(form["buttons"][:1])

    def describe_token(self, token: str) -> str:
        return f"jwt {jwt_header(token)['alg']}" if token.count(".") == 2 else "opaque"


class Peer(Flavor):
    """bench/peer/server.mjs (oidc-provider v9)."""
    name = "peer"

    def authorize_query(self, purpose: str) -> dict:
        q = super().authorize_query(purpose)
        if purpose == "token":
            # oidc-provider issues a JWT access token only for a resource; Latchkey always
            # issues one. With this, /token does the same signing work on both (see server.mjs).
            q["resource"] = "urn:bench:api"
        return q



class Latchkey(Flavor):
    """Latchkey (bench/latchkey-bench.toml). The generic Flavor already fits it:
    - templates/login.html posts to /login: hidden csrf + interaction (copied from the page by
      answer_page; the csrf cookie comes from the jar) + username + password. A successful
      login continues the stored request, so with consent remembered POST /login answers with
      the redirect to the client carrying a code.
    - templates/consent.html: the first button is decision=allow. bench-web does not skip
      consent, so prepare() grants it once and every later authorize finds it remembered.
    - Access tokens of the code flow are RS256 JWTs (at+jwt) that userinfo and introspection
      accept, so no resource parameter is needed.
    """
    name = "latchkey"


FLAVORS = {"peer": Peer, "latchkey": Latchkey}


def wait_ready(base: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            discover(Http(base, timeout=2))
            return
        except (OSError, BenchError, http.client.HTTPException):
            if time.monotonic() > deadline:
                raise BenchError(f"server at {base} not ready after {timeout}s")
            time.sleep(0.2)
