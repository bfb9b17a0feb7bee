"""Reference producer of plans in Python (standard library + Debian's python3-redis).

Signs plans exactly as the TypeScript code does (docs/plan-format.md: canonical JSON, HMAC-SHA256 with the
source's key P3_KEY_<SOURCE>), adds them to quantum:stream:apply.plan, awaits the one final result on
quantum:stream:apply.result and keeps the producer contract (README "Producer contract"): the SAME signed
entry is added again when Redis restarted or failed over (its run_id changed) before a final result, or
when a final result read back 5 s later is gone (drain()). Uses only the rights of the strategy's Redis
user p3-strategy (XADD on the plan stream; XREAD/XRANGE on the result stream; INFO).

Quantities and prices are decimal strings throughout; nothing here does float arithmetic on them.
"""

from __future__ import annotations

import decimal
import hashlib
import hmac
import json
import math
import os
import re
import secrets
import time

PLAN_STREAM = "quantum:stream:apply.plan"
RESULT_STREAM = "quantum:stream:apply.result"
PLAN_STREAM_MAXLEN = 100000
DEFAULT_SOURCE = "exit_brain"

# producer contract timing, seconds (src/client/producer.ts DEFAULT_TIMING)
RESUBMIT_AFTER_S = 4.0
RESUBMIT_MAX_S = 30.0
DURABLE_AFTER_S = 5.0
KEEP_S = 150.0

HOLD_REASONS = ("reconcile_hold_active", "operator_hold", "trading_halted", "trading_state_reducing", "breaker_open", "circuit_breaker_open")
TRANSIENT_REASONS = ("snapshot_older_than_fill", "snapshot_superseded", "order_in_flight", "snapshot_unknown", "missing_exchange", "stale_exchange")
ENTRY_ACTIONS = ("OPEN", "INCREASE")
STRATEGY_ACTIONS = ("FULL_CLOSE", "PARTIAL_75", "PARTIAL_50", "PARTIAL_25", "REDUCE", "OPEN", "INCREASE")


# --- canonical JSON and signing (docs/plan-format.md "Canonical JSON") ---------------------------------------


def js_number(x) -> str:
    """A number as ECMAScript's Number.prototype.toString writes it (1.0 -> "1", 1e-07 -> "1e-7")."""
    if isinstance(x, bool):
        raise TypeError("a boolean is not a number here")
    if isinstance(x, int):
        return str(x)
    if not math.isfinite(x):
        raise ValueError("plans carry finite numbers only")
    if x == 0:
        return "0"
    sign = "-" if x < 0 else ""
    r = repr(abs(x))  # shortest round-trip digits, as ECMAScript's
    mant, _, exp = r.partition("e")
    ip, _, fp = mant.partition(".")
    digits = (ip + fp).lstrip("0")
    e = (int(exp) if exp else 0) - len(fp)
    stripped = digits.rstrip("0")
    e += len(digits) - len(stripped)
    s, k = stripped, len(stripped)
    n = k + e  # value = 0.s * 10^n
    if k <= n <= 21:
        out = s + "0" * (n - k)
    elif 0 < n <= 21:
        out = s[:n] + "." + s[n:]
    elif -6 < n <= 0:
        out = "0." + "0" * (-n) + s
    else:
        e1 = n - 1
        out = (s if k == 1 else s[0] + "." + s[1:]) + "e" + ("+" if e1 >= 0 else "-") + str(abs(e1))
    return sign + out


_ESC = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def js_string(s: str) -> str:
    """A string as JSON.stringify writes it: only quote, backslash and U+0000-U+001F escaped."""
    out = []
    for ch in s:
        if ch in _ESC:
            out.append(_ESC[ch])
        elif ord(ch) < 0x20:
            out.append("\\u%04x" % ord(ch))
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def canonical_json(value) -> str:
    """JSON with object keys sorted (UTF-16 code units), no whitespace; None is null (docs/plan-format.md)."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, (int, float)):
        return js_number(value)
    if isinstance(value, str):
        return js_string(value)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(canonical_json(v) for v in value) + "]"
    if isinstance(value, dict):
        keys = sorted(value.keys(), key=lambda k: k.encode("utf-16-be"))
        return "{" + ",".join(js_string(k) + ":" + canonical_json(value[k]) for k in keys) + "}"
    raise TypeError("not JSON: %r" % (value,))


def hmac_hex(key: str, payload: str) -> str:
    """Lower-case hex HMAC-SHA256 of the UTF-8 payload with the UTF-8 key."""
    return hmac.new(key.encode("utf-8"), payload.encode("utf-8"), hashlib.sha256).hexdigest()


def plan_digest(plan_json: str) -> str:
    """Lower-case hex SHA-256 of the exact plan string (what each permit binds)."""
    return hashlib.sha256(plan_json.encode("utf-8")).hexdigest()


def key_env_name(source: str) -> str:
    """P3_KEY_<SOURCE>: exit_brain -> P3_KEY_EXIT_BRAIN, p3.4 -> P3_KEY_P3_4."""
    return "P3_KEY_" + re.sub(r"[^A-Z0-9]", "_", source.upper())


def sign_plan(plan: dict, key: str) -> tuple[str, str]:
    """(plan, mac): the canonical JSON of the plan (defaults applied) and its MAC."""
    p = {"type": "MARKET", "reduceOnly": True, "reason": ""}
    p.update({k: v for k, v in plan.items()})
    if not key:
        raise ValueError("no key: set P3_KEY_<SOURCE>")
    payload = canonical_json(p)
    return payload, hmac_hex(key, payload)


def permit_signing_string(issuer: str, plan_id: str, entry_id: str, digest: str, fields: dict) -> str:
    """The string a permit's sig covers (p3-permit-v2)."""
    rest = {k: v for k, v in fields.items() if k != "sig"}
    return "p3-permit-v2\n" + canonical_json({"issuer": issuer, "plan_id": plan_id, "entry_id": entry_id, "plan_digest": digest, "fields": rest})


_DECIMAL = re.compile(r"^(?:0|[1-9][0-9]{0,12})(?:\.[0-9]{1,18})?$")


def build_plan(symbol: str, action: str, side: str | None = None, qty: str | None = None, notional_usd: str | None = None, plan_id: str | None = None, reason: str | None = None, source: str = DEFAULT_SOURCE, kill_score=None, ts_ms: int | None = None) -> dict:
    """The plan of a strategy's request (docs/plan-format.md "Fields"); raises ValueError on a malformed one."""
    action = action.upper()
    if action not in STRATEGY_ACTIONS:
        raise ValueError("action must be one of %s" % ", ".join(STRATEGY_ACTIONS))
    entry = action in ENTRY_ACTIONS
    pid = plan_id or secrets.token_hex(8)
    if not re.fullmatch(r"[A-Za-z0-9:._-]{1,64}", pid):
        raise ValueError("plan_id must be 1-64 of [A-Za-z0-9:._-]")
    sym = symbol.upper()
    if not re.fullmatch(r"[A-Z0-9]{2,30}", sym):
        raise ValueError("symbol must be upper-case alphanumerics")
    for name, v in (("qty", qty), ("notional_usd", notional_usd)):
        if v is not None and (not isinstance(v, str) or not _DECIMAL.match(v) or decimal.Decimal(v) <= 0):
            raise ValueError("%s must be a positive plain decimal string" % name)
    if entry:
        if side not in ("BUY", "SELL"):
            raise ValueError("%s needs side BUY or SELL" % action)
        if (qty is None) == (notional_usd is None):
            raise ValueError("%s needs exactly one of qty or notional_usd" % action)
    else:
        if notional_usd is not None:
            raise ValueError("notional_usd is for entries only")
        if action == "REDUCE" and qty is None:
            raise ValueError("REDUCE needs qty")
    plan = {
        "plan_id": pid,
        "symbol": sym,
        "decision": "EXECUTE",
        "action": action,
        "type": "MARKET",
        "reduceOnly": not entry,
        "reason": reason if reason is not None else ("entry" if entry else "exit"),
        "source": source,
        "kill_score": kill_score,
        "ts_ms": int(ts_ms if ts_ms is not None else time.time() * 1000),
    }
    if side is not None:
        plan["side"] = side
    if qty is not None:
        plan["qty"] = qty
    if notional_usd is not None:
        plan["notional_usd"] = notional_usd
    return plan


# --- results (docs/plan-format.md "Results") ------------------------------------------------------------------

_PERMIT_PART = re.compile(r"^(governor|p33) (ALLOW|DENY|PENDING|INVALID)(?: ([a-z0-9_]{1,64}))?$")


def parse_permit_decisions(text: str):
    """{'governor': {...}, 'p33': {...}} from a DENY result's error, else None."""
    parts = text.split("; ")
    if len(parts) != 2:
        return None
    out = {}
    for p in parts:
        m = _PERMIT_PART.match(p)
        if not m:
            return None
        out[m.group(1)] = {"decision": m.group(2), "reason": m.group(3) or ""}
    if set(out) != {"governor", "p33"} or "DENY" not in (out["governor"]["decision"], out["p33"]["decision"]):
        return None
    return out


def to_result(entry_id: str, f: dict):
    """A final result as a dict with a typed status (EXECUTED, DENY, SKIPPED, REJECTED, FAILED); None when not final."""
    st = f.get("status", "")
    if st in ("", "DROPPED_DUPLICATE"):
        return None
    base = {"plan_id": f.get("plan_id", ""), "symbol": f.get("symbol", ""), "reason": f.get("reason", ""), "detail": f.get("error", ""), "ts_ms": int(f.get("ts_ms", "0") or 0), "entry_id": entry_id, "raw": f}
    if st == "EXECUTED":
        filled = f.get("filled_qty", "")
        ok = f.get("executed") == "true" and _DECIMAL.match(filled or "") is not None and decimal.Decimal(filled) > 0 and f.get("side") in ("BUY", "SELL")
        if not ok:
            return dict(base, status="FAILED", retryable=False, reason="unreadable_result")
        return dict(base, status="EXECUTED", side=f["side"], qty=f.get("qty", ""), filled_qty=filled, avg_price=f.get("avg_price", ""), order_id=f.get("order_id", ""), client_order_id=f.get("client_order_id", ""))
    if st == "SKIPPED":
        permits = parse_permit_decisions(base["detail"])
        return dict(base, status="DENY", **permits) if permits else dict(base, status="SKIPPED")
    if st in ("REJECTED_INVALID", "REJECTED_GUARDRAIL"):
        return dict(base, status="REJECTED", rejection=st)
    if st in ("FAILED", "RETRYABLE_RATE_LIMIT"):
        return dict(base, status="FAILED", retryable=st == "RETRYABLE_RATE_LIMIT")
    return dict(base, status="FAILED", retryable=False, reason="unreadable_result")


def _run_id(info) -> str | None:
    return info.get("run_id") if isinstance(info, dict) else None


class P3TimeoutError(Exception):
    """No final result in time: the plan may still execute."""


class P3Client:
    """Signs, submits and awaits plans as the strategy's Redis user (see the module docstring)."""

    def __init__(self, redis_url: str, key: str, source: str = DEFAULT_SOURCE, timeout_s: float = 60.0, resubmit_after_s: float = RESUBMIT_AFTER_S):
        import redis  # Debian: apt-get install python3-redis

        if not key:
            raise ValueError("no key: set %s" % key_env_name(source))
        self.source = source
        self._key = key
        self.timeout_s = timeout_s
        self.resubmit_after_s = resubmit_after_s
        self._r = redis.Redis.from_url(redis_url, decode_responses=True, socket_timeout=5, socket_connect_timeout=5, health_check_interval=0)
        self._errors = (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError)
        self._finished = []  # (plan, mac, result) for drain()

    @classmethod
    def from_env(cls, env=None, source: str = DEFAULT_SOURCE, **kw) -> "P3Client":
        """REDIS_URL and P3_KEY_<SOURCE> from the environment."""
        env = os.environ if env is None else env
        url = env.get("REDIS_URL")
        if not url:
            raise ValueError("set REDIS_URL (redis://p3-strategy:<password>@host:6379)")
        name = key_env_name(source)
        if not env.get(name):
            raise ValueError("no key for plan source %s: set %s" % (source, name))
        return cls(url, env[name], source=source, **kw)

    def close(self) -> None:
        self._r.close()

    def _info_run_id(self):
        try:
            return _run_id(self._r.info("server"))
        except self._errors:
            return None

    def _add(self, plan: str, mac: str) -> bool:
        try:
            self._r.xadd(PLAN_STREAM, {"plan": plan, "mac": mac}, maxlen=PLAN_STREAM_MAXLEN, approximate=True)
            return True
        except self._errors:
            return False

    def submit_signed(self, plan_id: str, plan: str, mac: str, timeout_s: float | None = None) -> dict:
        """Adds an already signed entry and awaits the plan's final result (producer contract, module docstring)."""
        deadline = time.time() + (timeout_s if timeout_s is not None else self.timeout_s)
        newest = self._r.xrevrange(RESULT_STREAM, "+", "-", count=1)
        cursor = newest[0][0] if newest else "0-0"
        first = time.time()
        epoch = self._info_run_id()
        acked = self._add(plan, mac)
        last, resubmits = time.time(), 0
        while time.time() < deadline:
            try:
                res = self._r.xread({RESULT_STREAM: cursor}, count=1000, block=250)
            except self._errors:
                time.sleep(0.1)
                res = []
            for _, entries in res or []:
                for entry_id, f in entries:
                    cursor = entry_id
                    if f.get("plan_id") == plan_id:
                        r = to_result(entry_id, f)
                        if r is not None:
                            r["seen_s"] = time.time()
                            self._finished.append((plan, mac, r))
                            return r
            now_epoch = self._info_run_id()
            if now_epoch is not None and now_epoch != epoch:
                # restarted or failed over: read again from before the plan (a replica's ids may be lower)
                cursor = "%d-0" % max(0, int(first * 1000) - 5000)
            gap = min(RESUBMIT_MAX_S, self.resubmit_after_s * 2 ** min(resubmits, 6))
            may_be_lost = not acked or epoch is None or (now_epoch is not None and now_epoch != epoch)
            if may_be_lost and time.time() - last >= gap and time.time() - first < KEEP_S:
                if self._add(plan, mac):
                    acked = True
                    epoch = now_epoch or self._info_run_id()
                last, resubmits = time.time(), resubmits + 1
        raise P3TimeoutError("no final result for plan %s (it may still execute)" % plan_id)

    def submit(self, symbol: str, action: str, retries: int = 3, timeout_s: float | None = None, **kw) -> dict:
        """Builds, signs, submits and awaits a plan; transient refusals are re-tried as new plans <id>.r<n>."""
        deadline = time.time() + (timeout_s if timeout_s is not None else self.timeout_s)
        first_id = kw.pop("plan_id", None) or secrets.token_hex(8)
        attempt = 0
        while True:
            pid = first_id if attempt == 0 else "%s.r%d" % (first_id[:58], attempt)
            plan = build_plan(symbol, action, plan_id=pid, source=self.source, **kw)
            payload, mac = sign_plan(plan, self._key)
            r = self.submit_signed(pid, payload, mac, timeout_s=max(0.001, deadline - time.time()))
            wait = 0.25 * (attempt + 1)
            if r["status"] == "EXECUTED" or r["reason"] not in TRANSIENT_REASONS or attempt >= retries or time.time() + wait >= deadline:
                return r
            time.sleep(wait)
            attempt += 1

    def drain(self, timeout_s: float = 30.0) -> bool:
        """Reads every final result back DURABLE_AFTER_S after it was seen; re-submits a plan whose result is gone."""
        end = time.time() + timeout_s
        while self._finished and time.time() < end:
            plan, mac, r = self._finished[0]
            wait = r["seen_s"] + DURABLE_AFTER_S - time.time()
            if wait > 0:
                time.sleep(min(wait, max(0.0, end - time.time())))
                continue
            try:
                still = self._r.xrange(RESULT_STREAM, r["entry_id"], r["entry_id"])
            except self._errors:
                time.sleep(0.2)
                continue
            self._finished.pop(0)
            if not still:
                self.submit_signed(r["plan_id"], plan, mac, timeout_s=max(0.001, end - time.time()))
        return not self._finished
