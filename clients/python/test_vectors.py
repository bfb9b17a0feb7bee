"""Checks docs/plan-format-vectors.json against the Python signing code: exit 0 when every vector passes.

Run: python3 clients/python/test_vectors.py (standard library only; test/client/python.test.ts runs it).
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from p3client import canonical_json, hmac_hex, js_number, permit_signing_string, plan_digest, sign_plan  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")


def main() -> int:
    with open(os.path.join(ROOT, "docs", "plan-format-vectors.json"), encoding="utf-8") as fh:
        v = json.load(fh)
    failures = []
    if v.get("version") != 1:
        failures.append("vectors version %r, expected 1" % v.get("version"))
    n = 0
    for p in v["plans"]:
        n += 1
        plan, mac = sign_plan(p["plan"], v["key"])
        if plan != p["canonical"]:
            failures.append("plan %s: canonical\n  got  %s\n  want %s" % (p["name"], plan, p["canonical"]))
        if mac != p["mac"]:
            failures.append("plan %s: mac %s, want %s" % (p["name"], mac, p["mac"]))
        if plan_digest(p["canonical"]) != p["plan_digest"]:
            failures.append("plan %s: digest" % p["name"])
    for q in v["permits"]:
        n += 1
        b = q["binding"]
        fields = dict(q["fields"], plan_digest=b["plan_digest"], sig=q["sig"])
        s = permit_signing_string(q["issuer"], b["plan_id"], b["entry_id"], b["plan_digest"], fields)
        if s != q["signing_string"]:
            failures.append("permit %s: signing string\n  got  %s\n  want %s" % (q["name"], s, q["signing_string"]))
        if hmac_hex(q["key"], s) != q["sig"]:
            failures.append("permit %s: sig" % q["name"])
    # number formatting as ECMAScript's Number.prototype.toString
    for x, want in [(1.0, "1"), (1e-7, "1e-7"), (0.00001, "0.00001"), (1e21, "1e+21"), (123456.75, "123456.75"), (-0.5, "-0.5"), (1.5e-10, "1.5e-10"), (1e20, "100000000000000000000"), (0.1 + 0.2, "0.30000000000000004"), (5, "5")]:
        n += 1
        if js_number(x) != want:
            failures.append("js_number(%r) = %s, want %s" % (x, js_number(x), want))
    if canonical_json({"b": None, "a": [True, "é\u2028"]}) != '{"a":[true,"é\u2028"],"b":null}':
        failures.append("canonical_json of a nested value")
    for f in failures:
        print("FAIL", f)
    print("%s %d vectors" % ("ok" if not failures else "FAILED", n))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
