/**
 * Redis side of the reconcile engine: one pipelined (MULTI) read of every input for a set of symbols
 * (`reconcileRead-10.lua` per symbol), and the atomic application of a decision (`reconcileApply-11.lua`,
 * `closePublish-5.lua`, `writeLedger`).
 */
import type { Redis } from 'ioredis';
import { EVENTS_MAXLEN, STREAMS, keys } from '../../adapters/redis/keys.js';
import { closePublish, operatorHold as operatorHoldScript, queueReconcileRead, reconcileApply, reconcileRead, reconcileReadKeys, type ReconcileApplyResult } from '../../adapters/redis/scripts/index.js';
import { fieldsToObject } from '../../adapters/redis/consumer.js';
import { EVIDENCE_LOOKBACK } from '../../domain/reconcile-evidence.js';
import type { RawHash } from '../../domain/position.js';

/** Raw inputs of one symbol, read in one MULTI with every other symbol's. */
export interface SymbolReads {
  symbol: string;
  snapshotRaw: RawHash;
  ledgerRaw: RawHash;
  legacyRaw: RawHash;
  hold: string | null;
  holdReason: string | null;
  holdSig: string | null;
  inflight: Record<string, string>;
  /** `last_fix_ts_ms` of the state hash (epoch ms), null when never repaired. */
  lastFixTsMs: number | null;
  /** Read error of the snapshot hash (e.g. WRONGTYPE: the key is not a hash), else null. */
  snapshotError: string | null;
  /** Read error of the ledger or legacy ledger hash, else null. */
  ledgerError: string | null;
  /** Read error of the hold keys (treated as an operator hold: present, never touched), else null. */
  holdError: string | null;
  /** `quantum:apply:last_fill_ms:<SYM>`: epoch ms of the newest EXECUTED fill (null when none/unreadable). */
  lastFillTsMs: number | null;
  /** The raw `last_fill_ms` value ('' when none), for the compare-and-set of `reconcileApply-11.lua`. */
  lastFillRaw: string;
  /** HGETALL `quantum:governor:trading_state:<SYM>` (null when unreadable: counts as HALTED). */
  tradingStateRaw: Record<string, string> | null;
}

/** A raw result entry of `quantum:stream:apply.result`. */
export interface ResultEntry {
  id: string;
  fields: Record<string, string>;
}

/** Everything one pass reads. */
export interface PassReads {
  symbols: SymbolReads[];
  /**
   * The newest entries of the result stream, newest first (read once per pass): the last
   * {@link EVIDENCE_LOOKBACK}, and further back until they hold {@link EVIDENCE_LOOKBACK} fills (see {@link readPass}).
   */
  results: ResultEntry[];
  /** HGETALL of the global `quantum:governor:trading_state` (null when unreadable: counts as HALTED). */
  globalTradingStateRaw: Record<string, string> | null;
}

/**
 * Most result entries one pass reads to find {@link EVIDENCE_LOOKBACK} fills. Results that are not fills
 * (DROPPED_DUPLICATE of re-submitted or duplicated plans, SKIPPED, ...) must not push a fill out of the
 * evidence: found by `p3 chaos` (seed 41), where 80 DROPPED_DUPLICATE results of re-submitted plans, within
 * 3 s, hid the fill of a RECONCILE_CLOSE that had flattened the position, and the symbol stayed
 * MANUAL_REQUIRED ("nothing closable") instead of healing.
 */
export const EVIDENCE_SCAN_MAX = 1000;
const SCAN_PAGE = 200;

/** The keys of `reconcileRead-10.lua` for `s`, in its header's order. */
export function readKeys(s: string): string[] {
  return reconcileReadKeys(s);
}

/** A flat `[field, value, ...]` HGETALL answer as a hash (the conversion ioredis makes for `hgetall`). */
function hashOf(flat: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (!Array.isArray(flat)) throw new Error(`reconcileRead: expected a field/value array, got ${typeof flat}`);
  for (let i = 0; i + 1 < flat.length; i += 2) out[String(flat[i])] = String(flat[i + 1]);
  return out;
}

/** The script cache of the server lost `reconcileRead` (SCRIPT FLUSH) while this connection stayed open. */
class ReadScriptNotLoaded extends Error {}

/**
 * Reads every input of `symbols` and the result stream in one MULTI (one round trip, one consistent view):
 * per symbol one `reconcileRead-10.lua` call (its ten reads), then the result stream and the global
 * trading state (then, after the MULTI, older results until the evidence holds enough fills: `readBackToFills`).
 * A script cache emptied under an open connection (SCRIPT FLUSH: inside a MULTI ioredis does
 * not resend the script) is reloaded by one direct call and the read is made again.
 * @throws when Redis is unreachable, the MULTI fails, or the result stream or a script call fails as a whole
 */
export async function readPass(redis: Redis, symbols: string[], evidenceWindowSec = 300): Promise<PassReads> {
  try {
    return await readPassOnce(redis, symbols, evidenceWindowSec);
  } catch (err) {
    if (!(err instanceof ReadScriptNotLoaded) || symbols.length === 0) throw err;
    await reconcileRead(redis, symbols[0] as string);
    return readPassOnce(redis, symbols, evidenceWindowSec);
  }
}

async function readPassOnce(redis: Redis, symbols: string[], evidenceWindowSec: number): Promise<PassReads> {
  const m = redis.multi();
  for (const s of symbols) queueReconcileRead(m, s);
  m.xrevrange(STREAMS.applyResult, '+', '-', 'COUNT', EVIDENCE_LOOKBACK);
  m.hgetall(keys.tradingState());
  const res = await m.exec();
  if (!res) throw new Error('reconcile read aborted');
  const val = (i: number): unknown => {
    const [err, v] = res[i] as [Error | null, unknown];
    if (err) throw err;
    return v;
  };
  /** One of a symbol's ten reads: an error (WRONGTYPE) is that symbol's problem, never the whole pass's. */
  const soft = <T>(items: unknown[], i: number, fallback: T, as: (v: unknown) => T = (v) => v as T): { v: T; err: string | null } => {
    const v = items[i];
    if (v instanceof Error) return { v: fallback, err: v.message };
    return { v: v === null || v === undefined ? fallback : as(v), err: null };
  };
  const str = (v: unknown): string => String(v);
  const out: SymbolReads[] = symbols.map((symbol, k) => {
    const [scriptErr] = res[k] as [Error | null, unknown];
    if (scriptErr && /NOSCRIPT/.test(scriptErr.message)) throw new ReadScriptNotLoaded(scriptErr.message);
    const items = val(k);
    if (!Array.isArray(items) || items.length !== 10) throw new Error(`reconcileRead ${symbol}: unexpected reply`);
    const snap = soft<RawHash>(items, 0, {}, hashOf);
    const led = soft<RawHash>(items, 1, {}, hashOf);
    const leg = soft<RawHash>(items, 2, {}, hashOf);
    const hold = soft<string | null>(items, 3, null, str);
    const reason = soft<string | null>(items, 4, null, str);
    const sig = soft<string | null>(items, 5, null, str);
    const fix = soft<string | null>(items, 7, null, str).v;
    const lastFill = soft<string | null>(items, 8, null, str).v;
    const ts = soft<Record<string, string> | null>(items, 9, null, hashOf);
    return {
      symbol,
      snapshotRaw: snap.v,
      ledgerRaw: led.v,
      legacyRaw: leg.v,
      hold: hold.v,
      holdReason: reason.v,
      holdSig: sig.v,
      inflight: soft<Record<string, string>>(items, 6, {}, hashOf).v,
      lastFixTsMs: fix !== null && /^\d+$/.test(fix) ? Number(fix) : null,
      snapshotError: snap.err,
      ledgerError: led.err ?? leg.err,
      holdError: hold.err ?? reason.err ?? sig.err,
      lastFillTsMs: lastFill !== null && /^\d+$/.test(lastFill) ? Number(lastFill) : null,
      lastFillRaw: lastFill ?? '',
      tradingStateRaw: ts.err ? null : ts.v,
    };
  });
  const rawResults = val(symbols.length) as Array<[string, string[]]>;
  const [gErr, g] = res[symbols.length + 1] as [Error | null, Record<string, string>];
  const results = rawResults.map(([id, f]) => ({ id, fields: fieldsToObject(f) }));
  if (results.length >= EVIDENCE_LOOKBACK) await readBackToFills(redis, results, Date.now() - evidenceWindowSec * 1000);
  return { symbols: out, results, globalTradingStateRaw: gErr ? null : g };
}
/**
 * Extends `results` (newest first) further back in the stream until it holds {@link EVIDENCE_LOOKBACK} fills
 * (EXECUTED), reaches entries older than `minMs` (outside the evidence window) or holds
 * {@link EVIDENCE_SCAN_MAX} entries. The stream is append-only: older entries read after the pass's MULTI are
 * the same ones it would have read.
 */
async function readBackToFills(redis: Redis, results: ResultEntry[], minMs: number): Promise<void> {
  let fills = results.filter((e) => e.fields.status === 'EXECUTED').length;
  while (fills < EVIDENCE_LOOKBACK && results.length < EVIDENCE_SCAN_MAX) {
    const last = results[results.length - 1]?.id;
    if (!last || Number(last.split('-')[0]) < minMs) return;
    const page = (await redis.xrevrange(STREAMS.applyResult, `(${last}`, '-', 'COUNT', SCAN_PAGE)) as Array<[string, string[]]>;
    for (const [id, f] of page) {
      const e = { id, fields: fieldsToObject(f) };
      results.push(e);
      if (e.fields.status === 'EXECUTED') fills++;
    }
    if (page.length < SCAN_PAGE) return;
  }
}

/** Fingerprint of the snapshot fields a decision depends on (same format as in `reconcileApply-11.lua`). */
export function snapshotFingerprint(raw: RawHash): string {
  return [raw.position_amt ?? '', raw.side ?? '', raw.ts_ms ?? '', raw.ts_epoch ?? ''].join('|');
}

/** Ledger fingerprint right after a successful `writeLedger` (canonical fields only, legacy ones removed). */
export function writtenLedgerFingerprint(version: number, amount: string, side: string): string {
  return `${version}|${amount}|${side}|||`;
}

/** Arguments of {@link applyDecision}. */
export interface ApplyArgs {
  symbol: string;
  snapshotFp: string;
  ledgerFp: string;
  status: string;
  reason: string;
  holdAction: 'set' | 'clear' | 'keep';
  /** The verdict's drift shape ('' when none); a hold of the same shape keeps its episode signature. */
  driftSig: string;
  /** The episode signature to store as `hold_sig` when a NEW engine hold is set (`episodeSignature`). */
  newHoldSig: string;
  /** The `hold_sig` read with the inputs (null when none): its close marker ends the episode. */
  readHoldSig: string | null;
  /** The raw `last_fill_ms` read with the inputs ('' when none): the decision is stale if a fill was recorded since. */
  readLastFill: string;
  /** The client order ids in flight read with the inputs: a hold is set only if they are still exactly these. */
  readInflight: string[];
  holdTtlSec: number;
  state: Record<string, string>;
  eventBase: Record<string, string>;
  nowMs: number;
  manualRequired: boolean;
}

/** Reply of `reconcileApply-11.lua`. */
export type ApplyReply = ReconcileApplyResult;

/** Applies one decision atomically (see the script header). */
export async function applyDecision(redis: Redis, a: ApplyArgs): Promise<ApplyReply> {
  return reconcileApply(redis, { ...a, eventsMaxlen: EVENTS_MAXLEN });
}

/**
 * Publishes a signed close plan if the engine hold with `driftSig` still stands and the cooldown of this
 * drift and bucket is free (`closePublish-5.lua`).
 * @returns `published`, `cooldown_taken`, or `no_hold` (no matching hold)
 */
export async function publishClose(
  redis: Redis,
  a: { symbol: string; driftSig: string; bucket: number; cooldownSec: number; plan: string; mac: string; event: Record<string, string> },
): Promise<'published' | 'cooldown_taken' | 'no_hold'> {
  return closePublish(redis, { ...a, maxlen: EVENTS_MAXLEN });
}

/**
 * Sets (`set`) or clears (`clear`) an operator hold with its event (`operatorHold-5.lua`).
 * @returns true when set, or when a hold existed and was cleared
 */
export async function operatorHold(redis: Redis, symbol: string, action: 'set' | 'clear', ttlSec: number, reason: string, event: Record<string, string>): Promise<boolean> {
  return (await operatorHoldScript(redis, { symbol, action, ttlSec, reason, event, eventsMaxlen: EVENTS_MAXLEN })) === 'done';
}
