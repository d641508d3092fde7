#!/usr/bin/env python3
"""Where the server's core goes: groups the lines of
    perf record -a -C <server cpu> -g -- sleep 3          (during a load run)
    perf report --no-children --sort comm,dso,sym --stdio -g none | python3 bench/lib/perf_buckets.py
into a few buckets. Recording the whole CPU (-a -C) rather than the server's pid also catches
what else runs on that core (Postgres backends, which are not pinned)."""
import re, sys, collections
buckets = collections.OrderedDict((k, 0.0) for k in [
    "signing (aws-lc: RSA/ECDSA/Ed25519 + SHA)", "store: SQLite worker threads", "store: Postgres backends on this core", "store: sqlx/Postgres client",
    "kernel: TCP/loopback, syscalls, scheduling", "HTTP (hyper, axum, tower layers)", "allocator (mimalloc/libc)",
    "JSON, base64, claims", "argon2", "other"])
for line in sys.stdin:
    m = re.match(r"\s*([\d.]+)%\s+(\S+)\s+(\S+)\s+\[.\]\s+(.*)", line)
    if not m:
        continue
    pct, comm, dso, sym = float(m.group(1)), m.group(2), m.group(3), m.group(4)
    if comm.startswith("sqlx-sqlite"):
        b = "store: SQLite worker threads"
    elif comm == "postgres":
        b = "store: Postgres backends on this core"
    elif re.search(r"aws_lc|rsaz|bn_|ecp_|p256|ed25519|edwards|sha256_block|sha512_block|x25519|fiat", sym):
        b = "signing (aws-lc: RSA/ECDSA/Ed25519 + SHA)"
    elif re.search(r"argon2|blake2", sym):
        b = "argon2"
    elif dso == "[kernel.kallsyms]" or dso == "[vdso]":
        b = "kernel: TCP/loopback, syscalls, scheduling"
    elif re.search(r"sqlx|postgres", sym):
        b = "store: sqlx/Postgres client"
    elif re.search(r"hyper|axum|tower|http::|h1::|bytes::|tokio", sym):
        b = "HTTP (hyper, axum, tower layers)"
    elif re.search(r"^_?mi_|malloc|free|memmove|memcpy|memset|realloc|calloc", sym):
        b = "allocator (mimalloc/libc)"
    elif re.search(r"serde|base64|json|latchkey::tokens|jwt", sym):
        b = "JSON, base64, claims"
    else:
        b = "other"
    buckets[b] += pct
for k, v in buckets.items():
    print(f"{v:6.1f}%  {k}")
