/**
 * `p3 status`: what a person paged at 3 a.m. needs per symbol — the engine's verdict, the live exchange
 * and ledger amounts, the hold (owner, reason, remaining TTL), the age of the snapshot and of the engine's
 * last pass, and what to do next. Reads only (one MULTI per symbol); symbols found by SCAN when none given.
 */
import type { Redis } from 'ioredis';
import { scanKeys } from '../adapters/redis/client.js';
import { keys, patterns } from '../adapters/redis/keys.js';
import { fmt } from '../domain/decimal.js';
import { readLedger, readSnapshot, type RawHash } from '../domain/position.js';

/** One symbol's status (also the `--json` shape). Ages in seconds, amounts as signed decimal strings. */
export interface StatusRow {
  symbol: string;
  /** Engine verdict (`quantum:reconcile:state:<SYM>` status), `UNKNOWN` when the engine never wrote it. */
  status: string;
  reason: string;
  manual_required: boolean;
  detail: string;
  /** Live from the snapshot hash ('' when missing, `invalid` when unreadable). */
  exchange_amt: string;
  /** Live from the ledger (canonical or legacy). */
  ledger_amt: string;
  ledger_source: string;
  ledger_version: string;
  /** From the engine's last pass. */
  diff_amt: string;
  diff_pct: string;
  hold: { active: boolean; owner: 'engine' | 'operator' | null; reason: string; sig: string; ttl_sec: number | null };
  snapshot_age_sec: number | null;
  /** The snapshot's `source` field as the brain wrote it (e.g. `stream`, `rest`; `exchange` before), '' when absent. */
  snapshot_source: string;
  /** Seconds since the engine last wrote the state (a large value: is the engine running?). */
  engine_age_sec: number | null;
  /** Seconds since the verdict last changed. */
  since_sec: number | null;
  hint: string;
}

const age = (nowMs: number, tsMs: string | undefined): number | null => (tsMs && /^\d+$/.test(tsMs) ? Math.round((nowMs - Number(tsMs)) / 100) / 10 : null);

/**
 * Collects the status rows of `symbols` (all symbols with a snapshot, ledger, state or hold when empty).
 * @throws when Redis fails
 */
export async function collectStatus(redis: Redis, symbols: string[], nowMs: number): Promise<StatusRow[]> {
  let syms = symbols;
  if (syms.length === 0) {
    const found = new Set<string>();
    for (const p of [patterns.states, patterns.snapshots, patterns.holds, patterns.ledgers]) {
      const prefix = p.slice(0, -1);
      for (const k of await scanKeys(redis, p)) found.add(k.slice(prefix.length));
    }
    syms = [...found].filter((s) => /^[A-Z0-9]{2,30}$/.test(s)).sort();
  }
  const rows: StatusRow[] = [];
  for (const symbol of syms) {
    const res = await redis
      .multi()
      .hgetall(keys.reconcileState(symbol))
      .hgetall(keys.snapshot(symbol))
      .hgetall(keys.ledger(symbol))
      .hgetall(keys.legacyLedger004(symbol))
      .get(keys.hold(symbol))
      .pttl(keys.hold(symbol))
      .get(keys.holdReason(symbol))
      .get(keys.holdSig(symbol))
      .exec();
    if (!res) throw new Error('status read aborted');
    const v = <T>(i: number, fallback: T): T => (res[i]![0] ? fallback : (res[i]![1] as T));
    const state = v<RawHash>(0, {});
    const snapRaw = res[1]![0] ? null : v<RawHash>(1, {});
    const ledRaw = res[2]![0] ? null : v<RawHash>(2, {});
    const holdVal = v<string | null>(4, res[4]![0] ? 'WRONGTYPE' : null);
    const pttl = v<number>(5, -2);
    const holdReason = v<string | null>(6, null) ?? '';
    const holdSig = v<string | null>(7, null) ?? '';

    const snap = snapRaw === null ? { kind: 'invalid' as const, error: 'not a hash' } : readSnapshot(snapRaw);
    const led = ledRaw === null ? { kind: 'invalid' as const, error: 'not a hash' } : readLedger(ledRaw, v<RawHash>(3, {}));
    const holdActive = holdVal !== null;
    const row: StatusRow = {
      symbol,
      status: state.status ?? 'UNKNOWN',
      reason: state.reason ?? '',
      manual_required: state.manual_required === '1',
      detail: state.detail ?? '',
      exchange_amt: snap.kind === 'ok' ? fmt(snap.snapshot.amount) : snap.kind === 'missing' ? '' : 'invalid',
      ledger_amt: led.kind === 'ok' ? fmt(led.ledger.amount) : led.kind === 'missing' ? '' : 'invalid',
      ledger_source: led.kind === 'ok' ? (led.ledger.source ?? '') : '',
      ledger_version: led.kind === 'ok' ? String(led.ledger.version) : '',
      diff_amt: state.diff_amt ?? '',
      diff_pct: state.diff_pct ?? '',
      hold: { active: holdActive, owner: holdActive ? (holdSig ? 'engine' : 'operator') : null, reason: holdReason, sig: holdSig, ttl_sec: holdActive && pttl >= 0 ? Math.ceil(pttl / 1000) : null },
      snapshot_age_sec: snap.kind === 'ok' ? Math.round((nowMs - snap.snapshot.tsMs) / 100) / 10 : null,
      snapshot_source: snapRaw?.source ?? '',
      engine_age_sec: age(nowMs, state.last_seen_ts_ms),
      since_sec: age(nowMs, state.since_ts_ms),
      hint: '',
    };
    row.hint = hintFor(row);
    rows.push(row);
  }
  return rows;
}

/** What to do next, in one sentence (seed 000/001 runbooks). */
export function hintFor(r: StatusRow): string {
  const hints: string[] = [];
  if (r.status === 'UNKNOWN') hints.push('the engine has never reconciled this symbol: is reconcile-engine running with it in P34_ALLOWLIST?');
  else if (r.engine_age_sec !== null && r.engine_age_sec > 10) hints.push(`the engine's last pass was ${r.engine_age_sec}s ago: is reconcile-engine running?`);
  if (r.hold.owner === 'operator') hints.push(`operator hold (${r.hold.reason || 'no reason'}): \`p3 hold clear ${r.symbol}\` when done`);
  const verdict = r.status === 'UNKNOWN' ? '' : verdictHint(r);
  if (verdict) hints.push(verdict);
  return hints.join('; ');
}

function verdictHint(r: StatusRow): string {
  const s = r.symbol;
  switch (r.reason) {
    case 'missing_exchange':
    case 'stale_exchange':
      return 'no fresh exchange snapshot: is position-state-brain running and reaching the exchange?';
    case 'invalid_exchange':
      return `the snapshot hash is unreadable (${r.detail}): check position-state-brain / fix the hash`;
    case 'invalid_ledger':
      return `the ledger hash is unreadable (${r.detail}): \`p3 ledger set ${s} <amount> --reason ...\``;
    case 'side_mismatch':
    case 'qty_mismatch_no_evidence':
      if (r.manual_required || r.status === 'MANUAL_REQUIRED') {
        if (/HALTED/.test(r.detail)) {
          return `manual action: trading is HALTED, so no close is sent; \`p3 flatten ${s} --reason ...\` closes the position now, or \`p3 trading-state set ACTIVE --reason ...\` lets the engine heal it (${r.detail})`;
        }
        if (r.exchange_amt === '0') {
          return `manual action: the exchange is flat and no close of ours explains it (a manual close leaves no evidence); if flat is right: \`p3 ledger set ${s} 0 --reason ...\` (${r.detail})`;
        }
        return `manual action: \`p3 flatten ${s} --reason ...\` to close the position on the exchange, or if the system really holds it \`p3 ledger set ${s} ${r.exchange_amt || '<amount>'} --reason ...\` (${r.detail})`;
      }
      return 'self-healing: a reduce-only RECONCILE_CLOSE is published for this drift (watch `p3 events --follow`)';
    case 'in_flight':
    case 'recent_fill':
    case 'snapshot_older_than_fill':
      return `waiting for the exchange to settle (${r.detail})`;
    default:
      return '';
  }
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n');
}

/** Renders rows for a terminal: a table, then one line per symbol that needs attention. */
export function renderStatus(rows: StatusRow[]): string {
  if (rows.length === 0) return 'no symbols (set P34_ALLOWLIST, or nothing is in Redis yet)\n';
  const head = ['SYMBOL', 'STATUS', 'REASON', 'EXCHANGE', 'LEDGER', 'DIFF', 'HOLD', 'SNAPSHOT AGE', 'SINCE'];
  const body = rows.map((r) => [
    r.symbol,
    r.manual_required && r.status !== 'MANUAL_REQUIRED' ? `${r.status}!` : r.status,
    r.reason || '-',
    r.exchange_amt || '-',
    r.ledger_amt || '-',
    r.diff_amt ? `${r.diff_amt}${r.diff_pct ? ` (${r.diff_pct}%)` : ''}` : '-',
    r.hold.active ? `${r.hold.owner} ${r.hold.ttl_sec ?? '∞'}s ${r.hold.reason}`.trim() : 'none',
    r.snapshot_age_sec === null ? '-' : `${r.snapshot_age_sec}s${r.snapshot_source ? ` ${r.snapshot_source}` : ''}`,
    r.since_sec === null ? '-' : `${Math.round(r.since_sec)}s`,
  ]);
  const notes = rows.filter((r) => r.hint).map((r) => `${r.symbol}: ${r.hint}`);
  const blocked = rows.filter((r) => r.hold.active).length;
  const summary = blocked === 0 ? 'no hold on the symbols shown' : `${blocked} symbol(s) on HOLD: every plan for them is denied`;
  const legend = rows.some((r) => r.manual_required) ? '`!` after a status: no automatic close will heal it, a person must act\n' : '';
  return `${table([head, ...body])}\n\n${summary}\n${legend}${notes.length ? `${notes.join('\n')}\n` : ''}`;
}
