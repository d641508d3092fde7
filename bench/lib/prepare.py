#!/usr/bin/env python3
"""Prepare the inputs of every scenario: python3 bench/lib/prepare.py --base URL --flavor peer|latchkey [--out FILE]"""
import argparse
import json
import sys

import benchlib


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--base", required=True, help="e.g. http://127.0.0.1:3001")
    ap.add_argument("--flavor", required=True, choices=sorted(benchlib.FLAVORS))
    ap.add_argument("--out", help="write the JSON here (default: stdout)")
    ap.add_argument("--no-check", action="store_true", help="skip the sanity checks")
    ap.add_argument("--wait", type=float, default=30.0, help="seconds to wait for the server")
    a = ap.parse_args()
    benchlib.wait_ready(a.base, a.wait)
    prep = benchlib.prepare(a.base, a.flavor, check=not a.no_check)
    text = json.dumps(prep, indent=2)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text + "\n")
    else:
        print(text)
    print(json.dumps(prep.get("checks", {})), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
