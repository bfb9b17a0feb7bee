/**
 * Redis side of the apply layer: dedupe claim and takeover, in-flight record, permits, the one atomic
 * record step (result + in-flight end + dedupe `done` + ledger for an EXECUTE fill), hold lease renewal.
 * Every check-then-write is one command or one Lua script (`applyCas-1`, `applyBegin-13`,
 * `applyRecord-8`, `holdRenew-3`).
 */
import type { Redis } from 'ioredis';
import { STREAMS, EVENTS_MAXLEN, keys } from '../../adapters/redis/keys.js';
import { applyBegin, applyCas, applyRecord, holdRenew, inflightKeep, lockRelease, lockRenew, type ApplyRecordLedger } from '../../adapters/redis/scripts/index.js';
import { replyValues, tickBatch } from '../../adapters/redis/tick-batch.js';
import { fetchLedger } from '../../adapters/redis/ledger.js';
import { fmt, type Decimal } from '../../domain/decimal.js';
import { sideOf } from '../../domain/position.js';
import type { ApplyResultFields } from '../../domain/result.js';
import { dedupeValue, parseDedupe, type DedupeStage, type PermitHash } from '../../domain/apply.js';
import type { SendGateReason } from '../../domain/send-gate.js';
import { readTradingState } from '../../domain/governor.js';
import type { StateRead } from '../../domain/last-moment.js';

/** Dedupe TTL, seconds (docs/architecture.md#redis-schema: SET NX EX 86400). */
export const DEDUPE_TTL_SEC = 86400;

/** What is stored about a sent order (`quantum:apply:order:<client_order_id>`), all strings. */
export interface OrderRecord {
  plan_id: string;
  entry_id: string;
  symbol: string;
  side: 'BUY' | 'SELL';
  qty: string;
  reduce_only: 'true' | 'false';
  decision: string;
  /** Dedupe value while sending (the owner's). */
  dedupe: string;
  ts_ms: string;
  /** RECONCILE_CLOSE / FLATTEN: the signed position the order was sized on (copied into the result). */
  basis_amt?: string;
}

/**
 * Claims a plan: `SET quantum:apply:dedupe:<plan_id> claimed|<entry>|<token> NX EX 86400`.
 * @returns `{claimed: true}` or the existing stage
 */
export async function claimPlan(redis: Redis, planId: string, entryId: string, token: string): Promise<{ claimed: true; value: string } | { claimed: false; existing: DedupeStage }> {
  const value = dedupeValue('claimed', entryId, token);
  // one command, sent in this turn's pipeline of the connection (with the plan's first permit read, tick-batch.ts)
  const [[setErr, ok]] = (await tickBatch(redis).pipeline([['set', keys.applyDedupe(planId), value, 'EX', DEDUPE_TTL_SEC, 'NX']])) as [[Error | null, unknown]];
  if (setErr) throw setErr;
  if (ok === 'OK') return { claimed: true, value };
  const raw = await redis.get(keys.applyDedupe(planId));
  // Our own value: the SET was executed but its reply lost, and ioredis re-sent it after reconnecting (the
  // re-sent SET NX answers nil). The token is unique per claim attempt, so this claim is ours.
  if (raw === value) return { claimed: true, value };
  // Expired between SET and GET: a vanishingly small window; treat as done (never a second order).
  return { claimed: false, existing: parseDedupe(raw) ?? { stage: 'done', raw: '' } };
}

/** Compare-and-swap of a dedupe value (TTL kept). @returns true when swapped */
export async function casDedupe(redis: Redis, planId: string, expected: string, next: string): Promise<boolean> {
  return (await applyCas(redis, planId, expected, next)) === 'swapped';
}

/** Outcome of {@link beginSend}. */
export type BeginOutcome = 'sending' | 'not_owner' | 'held' | 'hold_changed' | 'close_already_sent' | 'halted' | 'position_changed' | 'reducing' | 'reservation_gone' | 'breaker_open' | SendGateReason;

/**
 * Moves a plan to `sending` and writes the in-flight record (`HSET quantum:apply:inflight:<SYM> <cid>
 * <ts_ms>` + EXPIRE, pending zset, order hash) in one step.
 * For EXECUTE plans it refuses while the symbol's hold exists (a hold set after the permits still stops
 * the order); for RECONCILE_CLOSE plans (`close` given) it requires the hold with the plan's drift
 * signature and takes the one-close-per-drift marker (see applyBegin-13.lua); it refuses EXECUTE and
 * RECONCILE_CLOSE while trading is HALTED (FLATTEN never), and an entry whose position sign changed.
 * For every plan it applies the send-time gate (src/domain/send-gate.ts): refused while another order of
 * the symbol is in flight (`order_in_flight`), or when `snapshotTsMs` is unknown (`snapshot_unknown`) or
 * not newer than the symbol's newest fill (`snapshot_superseded`).
 * @param snapshotTsMs when the position the order was sized from was requested, epoch ms
 * @param expectSign entries: the sign the position must still have (OPEN 0, INCREASE ±1); null = no check
 * @param reserved entries: the governor's permit says it reserved exposure for the plan; the reservation must still exist
 * @returns `sending` (the caller may send); anything else: nothing was written and nothing may be sent
 */
export async function beginSend(
  redis: Redis,
  cid: string,
  rec: OrderRecord,
  claimedValue: string,
  inflightTtlSec: number,
  close: { driftSig: string; markerTtlSec: number } | undefined,
  snapshotTsMs: number | null,
  mode: 'execute' | 'close' | 'flatten' = close ? 'close' : 'execute',
  expectSign: -1 | 0 | 1 | null = null,
  reserved = false,
): Promise<BeginOutcome> {
  return applyBegin(redis, {
    planId: rec.plan_id,
    symbol: rec.symbol,
    cid,
    claimedValue,
    sendingValue: rec.dedupe,
    tsMs: rec.ts_ms,
    inflightTtlSec,
    orderJson: JSON.stringify(rec),
    orderTtlSec: DEDUPE_TTL_SEC,
    mode,
    driftSig: close?.driftSig,
    closeMarkerTtlSec: close?.markerTtlSec ?? 1,
    expectSign,
    snapshotTsMs,
    reserved,
  });
}

/** Releases the close marker of a drift after its close was recorded as NOT executed (a later bucket may retry). */
export async function releaseCloseMarker(redis: Redis, symbol: string, driftSig: string, cid: string): Promise<void> {
  await lockRelease(redis, keys.closeSent(symbol, driftSig), cid);
}

/** Reads the order hash of a client order id; null when missing or incomplete. */
export async function readOrderRecord(redis: Redis, cid: string): Promise<OrderRecord | null> {
  const h = await redis.hgetall(keys.applyOrder(cid));
  if (!h.plan_id || !h.symbol || (h.side !== 'BUY' && h.side !== 'SELL')) return null;
  return h as unknown as OrderRecord;
}

/** Client order ids sent at or before `olderThanMs` (epoch ms) and not yet recorded. */
export async function pendingOrders(redis: Redis, olderThanMs: number): Promise<string[]> {
  return redis.zrangebyscore(keys.applyPending(), '-inf', olderThanMs, 'LIMIT', 0, 100);
}

/** Removes a pending entry whose order hash is gone (nothing left to resolve). */
export async function dropPending(redis: Redis, cid: string): Promise<void> {
  await redis.zrem(keys.applyPending(), cid);
}

/**
 * Reads both permits of a plan in one MULTI, sent in this turn's one pipeline of the connection with the
 * other waiting plans' reads (tick-batch.ts).
 */
export async function readPermits(redis: Redis, planId: string): Promise<{ gov: PermitHash; p33: PermitHash }> {
  const [gov, p33] = replyValues(await tickBatch(redis).multi([['hgetall', keys.permitGovernor(planId)], ['hgetall', keys.permitP33(planId)]]));
  return { gov: gov as PermitHash, p33: p33 as PermitHash };
}

/** Outcome of {@link recordResult}. */
export type RecordOutcome = { kind: 'recorded'; ledgerVersion: number | null; ledger: 'written' | 'missing' | 'invalid' | 'not_applicable' | 'evidence_only' } | { kind: 'fenced' };

/** Result fields as a string map (the stream's shape). */
function resultJson(fields: ApplyResultFields): string {
  return JSON.stringify(fields);
}

/**
 * Records a plan's outcome exactly once (fenced on the dedupe stage).
 * @param fill signed fill to add to the ledger (EXECUTE fills only; RECONCILE_CLOSE fills are never
 *   applied, docs/architecture.md#heal-target). When the ledger is missing or invalid, the result is written alone and the
 *   reconcile engine initialises/repairs the ledger from the exchange (which already includes the fill).
 * @param attempts bounded retries on a ledger fingerprint conflict (someone wrote the ledger meanwhile)
 * @param ledgerIf when given, the fill is written to the ledger only if this accepts the ledger it would
 *   produce (read in the same attempt; the write is a compare-and-set on that read); otherwise the result
 *   is written alone (`evidence_only`) and the reconcile engine takes the fill as evidence
 * @throws Error when every attempt conflicted
 */
export async function recordResult(
  redis: Redis,
  fields: ApplyResultFields,
  opts: { cid: string; doneValue: string; fill?: Decimal; attempts?: number; expected?: string; ledgerIf?: (next: Decimal) => boolean },
): Promise<RecordOutcome> {
  const sym = fields.symbol;
  const tsMs = Number(fields.ts_ms);
  const attempts = opts.attempts ?? 5;
  for (let i = 0; i < attempts; i++) {
    let ledger: ApplyRecordLedger | null = null;
    let ledgerState: 'written' | 'missing' | 'invalid' | 'not_applicable' | 'evidence_only' = 'not_applicable';
    if (opts.fill && !opts.fill.isZero()) {
      const l = await fetchLedger(redis, sym);
      if (l.read.kind === 'ok' && opts.ledgerIf && !opts.ledgerIf(l.read.ledger.amount.add(opts.fill))) {
        ledgerState = 'evidence_only';
      } else if (l.read.kind === 'ok') {
        const next = l.read.ledger.amount.add(opts.fill);
        ledger = { fingerprint: l.fingerprint, amount: fmt(next), side: sideOf(next), tsEpoch: (tsMs / 1000).toFixed(3) };
        ledgerState = 'written';
      } else {
        ledgerState = l.read.kind;
      }
    }
    const r = await applyRecord(redis, { planId: fields.plan_id, symbol: sym, cid: opts.cid, resultJson: resultJson(fields), doneValue: opts.doneValue, ledger, eventsMaxlen: EVENTS_MAXLEN, tsMs, expected: opts.expected ?? '' });
    if (r.kind === 'fenced') return { kind: 'fenced' };
    if (r.kind === 'recorded') return { kind: 'recorded', ledgerVersion: r.ledgerVersion, ledger: ledgerState };
  }
  throw new Error(`ledger of ${sym} changed on every one of ${attempts} attempts; result not recorded yet`);
}

/** Publishes a result that records nothing (DROPPED_DUPLICATE, REJECTED_INVALID of an unverified entry). */
export async function publishResultOnly(redis: Redis, fields: ApplyResultFields): Promise<void> {
  const flat: string[] = [];
  for (const [k, v] of Object.entries(fields)) flat.push(k, String(v));
  await redis.xadd(STREAMS.applyResult, 'MAXLEN', '~', 100000, '*', ...flat);
}

/**
 * Renews the hold lease of `symbol` to `ttlSec` only while the hold stands with `hold_sig == driftSig`.
 * @returns `renewed`, `no_hold` or `sig_mismatch`
 */
export async function renewHold(redis: Redis, symbol: string, driftSig: string, ttlSec: number): Promise<'renewed' | 'no_hold' | 'sig_mismatch'> {
  return holdRenew(redis, symbol, driftSig, ttlSec);
}

/** Reads the hold of `symbol`: active flag and signature. */
export async function readHold(redis: Redis, symbol: string): Promise<{ active: boolean; sig: string | null }> {
  const res = await redis.multi().exists(keys.hold(symbol)).get(keys.holdSig(symbol)).exec();
  if (!res) throw new Error('hold read aborted');
  for (const [err] of res) if (err) throw err;
  return { active: Number(res[0]![1]) === 1, sig: (res[1]![1] as string | null) ?? null };
}

/**
 * Takes the per-symbol RECONCILE_CLOSE lock (`SET NX PX`), polling every 100 ms up to `waitMs`.
 * Serialising closes makes a second close of the same drift read the position AFTER the first one's
 * fill (then its `side`/`qty` invariant fails): one close order per drift even if several plans come.
 * @returns true when taken
 */
export async function takeCloseLock(redis: Redis, symbol: string, token: string, ttlMs: number, waitMs: number, signal: AbortSignal): Promise<boolean> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    if ((await redis.set(keys.applyCloseLock(symbol), token, 'PX', ttlMs, 'NX')) === 'OK') return true;
    if (Date.now() >= deadline || signal.aborted) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Extends the close lock's lease to `ttlMs` if still ours (`lockRenew-1.lua`). @returns true when renewed */
export async function renewCloseLock(redis: Redis, symbol: string, token: string, ttlMs: number): Promise<boolean> {
  return (await lockRenew(redis, keys.applyCloseLock(symbol), token, ttlMs)) === 'renewed';
}

/**
 * What the send-time gate will see for `symbol` (src/domain/send-gate.ts): client order ids in flight
 * and the newest recorded fill (epoch ms, null when none).
 */
export async function readSendState(redis: Redis, symbol: string): Promise<{ inflight: string[]; lastFillMs: number | null }> {
  const res = await redis.multi().hkeys(keys.applyInflight(symbol)).get(keys.lastFill(symbol)).exec();
  if (!res) throw new Error('send state read aborted');
  for (const [err] of res) if (err) throw err;
  const raw = res[1]![1] as string | null;
  return { inflight: res[0]![1] as string[], lastFillMs: raw && /^\d+$/.test(raw) ? Number(raw) : null };
}

/** Releases the close lock if still ours. */
export async function releaseCloseLock(redis: Redis, symbol: string, token: string): Promise<void> {
  await lockRelease(redis, keys.applyCloseLock(symbol), token);
}

/**
 * True when the global or the symbol's trading state is HALTED or unreadable (fail closed). A read for an
 * early, clear refusal; the authoritative check is atomic in `applyBegin-13.lua` at send time.
 */
export async function tradingHalted(redis: Redis, symbol: string): Promise<boolean> {
  const res = await redis.multi().hgetall(keys.tradingState()).hgetall(keys.tradingState(symbol)).exec();
  if (!res) return true;
  return res.some(([err, v]) => {
    if (err) return true;
    const st = readTradingState(v as Record<string, string>);
    return st.state === 'HALTED' || st.state === 'INVALID';
  });
}

/** What the last-moment check reads of a symbol (see src/domain/last-moment.ts). */
export interface LastMomentRead {
  globalState: StateRead;
  symbolState: StateRead;
  breakerOpen: boolean;
  holdActive: boolean;
  holdSig: string | null;
}

/**
 * Reads, in one MULTI, what the last-moment check of an order of `symbol` needs: both trading states, the symbol's
 * circuit breaker, its hold and hold signature. A key of the wrong type reads as INVALID / present (fail closed).
 * @throws Error when Redis does not answer (the order is then not sent: the caller's check fails closed)
 */
export async function readLastMoment(redis: Redis, symbol: string): Promise<LastMomentRead> {
  const res = await redis.multi().hgetall(keys.tradingState()).hgetall(keys.tradingState(symbol)).exists(keys.governorBreaker(symbol)).exists(keys.hold(symbol)).get(keys.holdSig(symbol)).exec();
  if (!res) throw new Error('last-moment read aborted');
  const state = (i: number): StateRead => {
    const [err, v] = res[i]!;
    if (err) return 'INVALID';
    const st = readTradingState(v as Record<string, string>);
    return st.set ? st.state : null;
  };
  const [, breaker] = res[2]!;
  const [holdErr, hold] = res[3]!;
  const [sigErr, sig] = res[4]!;
  return { globalState: state(0), symbolState: state(1), breakerOpen: Number(breaker) === 1, holdActive: holdErr !== null || Number(hold) === 1, holdSig: sigErr ? '\u0000unreadable' : ((sig as string | null) ?? null) };
}

/**
 * Keeps an unresolved order in the symbol's in-flight hash (and its TTL at least `ttlSec`) while its plan is still
 * `sending` under `dedupeValue` (inflightKeep-2.lua): the send-time gate and the engine's grace rule then never lose
 * sight of an order whose outcome is still unknown, however long that lasts.
 * @returns false when the plan is no longer sending under that claim (nothing written)
 */
export async function keepInflight(redis: Redis, rec: OrderRecord, cid: string, dedupeValue: string, ttlSec: number): Promise<boolean> {
  return (await inflightKeep(redis, { planId: rec.plan_id, symbol: rec.symbol, dedupeValue, cid, tsMs: rec.ts_ms, ttlSec })) === 'kept';
}

/**
 * Keeps every order still `sending` in its symbol's in-flight hash (see {@link keepInflight}), from the pending
 * zset (at most 1000 orders a pass). Run on its own timer: the sweep can spend minutes on one order's lookups
 * while another order's hash TTL runs out.
 * @returns the number of orders kept
 */
export async function keepUnresolvedInflight(redis: Redis, ttlSec: number): Promise<number> {
  let n = 0;
  for (const cid of await redis.zrangebyscore(keys.applyPending(), '-inf', '+inf', 'LIMIT', 0, 1000)) {
    const rec = await readOrderRecord(redis, cid);
    if (!rec) continue;
    const stage = await redis.get(keys.applyDedupe(rec.plan_id));
    if (stage && stage.startsWith('sending|') && (await keepInflight(redis, rec, cid, stage, ttlSec))) n++;
  }
  return n;
}

/** The dedupe value of a plan (`claimed|…`, `sending|…`, `done|…`), null when it has none. */
export async function readDedupe(redis: Redis, planId: string): Promise<string | null> {
  return redis.get(keys.applyDedupe(planId));
}

/** Client order ids in the symbol's in-flight hash, with when each was sent (epoch ms, as stored). */
export async function inflightOrders(redis: Redis, symbol: string): Promise<Record<string, string>> {
  return redis.hgetall(keys.applyInflight(symbol));
}

/** Removes an order from the pending zset and its symbol's in-flight hash in one MULTI (it is no longer in flight). */
export async function endInflight(redis: Redis, symbol: string, cid: string): Promise<void> {
  await redis.multi().zrem(keys.applyPending(), cid).hdel(keys.applyInflight(symbol), cid).exec();
}

/** The client order id holding the one-close-per-drift marker of `driftSig`, null when none was sent. */
export async function readCloseMarker(redis: Redis, symbol: string, driftSig: string): Promise<string | null> {
  return redis.get(keys.closeSent(symbol, driftSig));
}

/** Appends an event (FLATTEN_*) to `quantum:stream:reconcile.events` (capped at `EVENTS_MAXLEN`). */
export async function appendEvent(redis: Redis, fields: Record<string, string>): Promise<void> {
  await redis.xadd(STREAMS.reconcileEvents, 'MAXLEN', '~', EVENTS_MAXLEN, '*', ...Object.entries(fields).flat());
}

/** `INFO <sections>` of the Redis server (claim durability reads persistence, replication and server). */
export async function serverInfo(redis: Redis, ...sections: string[]): Promise<string> {
  return String(await redis.call('INFO', ...sections));
}

/** `WAIT <replicas> <timeoutMs>`. @returns how many replicas acknowledged every write of this connection so far */
export async function waitForReplicas(redis: Redis, replicas: number, timeoutMs: number): Promise<number> {
  return Number(await redis.call('WAIT', replicas, timeoutMs));
}

/**
 * Writes the sticky plan stream damage marker (`quantum:apply:plan_stream_damage`, read by `p3 doctor`):
 * the kinds and detail found at `nowMs`, and `first_ts_ms` unless the marker already has one.
 */
export async function markPlanStreamDamage(redis: Redis, kinds: string, detail: string, nowMs: number): Promise<void> {
  const marker = keys.planStreamDamage();
  const first = (await redis.hexists(marker, 'first_ts_ms')) ? [] : ['first_ts_ms', String(nowMs)];
  await redis.hset(marker, 'kinds', kinds, 'detail', detail, 'last_ts_ms', String(nowMs), ...first);
}

/**
 * The order record of a plan's order (all strings, as stored).
 * @param o.qty base-asset quantity; `tsMs` when it was sent (or found at the exchange), epoch ms; `dedupe` the
 *   claim's value it was sent under
 */
export function orderRecord(o: { planId: string; entryId: string; symbol: string; side: 'BUY' | 'SELL'; qty: Decimal; reduceOnly: boolean; decision: string; dedupe: string; tsMs: number; basisAmt?: string }): OrderRecord {
  return {
    plan_id: o.planId,
    entry_id: o.entryId,
    symbol: o.symbol,
    side: o.side,
    qty: fmt(o.qty),
    reduce_only: o.reduceOnly ? 'true' : 'false',
    decision: o.decision,
    dedupe: o.dedupe,
    ts_ms: String(o.tsMs),
    ...(o.basisAmt !== undefined ? { basis_amt: o.basisAmt } : {}),
  };
}
