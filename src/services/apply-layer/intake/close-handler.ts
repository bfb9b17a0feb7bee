/**
 * Handler of `quantum:stream:reconcile.close` (RECONCILE_CLOSE plans of the reconcile engine;
 * docs/architecture.md#heal-target, docs/architecture.md#reconcile_close-invariants; seed 002). Bypasses the permits (a hold makes both permits DENY: the seeds' deadlock, seed
 * 003) and enforces every invariant of `src/domain/close-guardrails.ts` instead:
 * - static rules (source, MAC with `P3_KEY_P3_4`, decision, reduceOnly, type, reason, allowlist, age,
 *   drift_sig, qty > 0, side) before the dedupe claim, so a forged entry can never burn a plan id;
 * - exactly-once as for plans (dedupe, deterministic client order id, in-flight resolution);
 * - hold active with `hold_sig == drift_sig`; qty <= |position| and side opposite to it, the position
 *   read FRESH from the exchange at execution time;
 * - the hold lease (hold, hold_reason, hold_sig) renewed atomically just before sending, only while the
 *   signature still matches (`holdRenew-3.lua`).
 * Any violation: `REJECTED_GUARDRAIL`, `reconcile_close_guardrail_fail_total{symbol,rule}`, a log line,
 * ack, no retry (MAC/schema failures are also dead-lettered). The close's fill is NOT applied to the
 * ledger: the result is the reconcile engine's evidence. 429/418: `RETRYABLE_RATE_LIMIT`, hold stays.
 *
 * Superseded, not forged: a correctly signed close that lost a race is not an invariant
 * violation and must not page anyone. It ends `SKIPPED`, is counted under
 * `reconcile_close_rejected_total{reason="superseded"|"expired"}` (never under the guardrail metric),
 * and sends nothing:
 * - `drift_superseded`: the hold's signature changed (the drift moved while the close waited);
 * - `hold_cleared`: the hold is gone (the drift healed while the close waited);
 * - `close_expired`: older than `APPLY_CLOSE_MAX_AGE_SEC` (a backlog, a takeover). The age is checked
 *   AFTER the dedupe claim, so the rejection finishes the claim (no `claimed|...` left for 24 h) and a
 *   redelivered close that was already `sending` is resolved by lookup, never dropped;
 * - `order_in_flight` / `snapshot_superseded`: the send-time gate (src/domain/send-gate.ts). Before
 *   reading the position the handler waits (bounded) until no other order of the symbol is in flight
 *   and the newest fill is in the past, and passes the read's start time as the order's snapshot time.
 * Forgeries keep the critical path: bad MAC, wrong source/decision/reason, LIMIT, reduceOnly not true,
 * qty above or side against the fresh position.
 *
 * The per-symbol close lock is a short lease (`send/symbol-lock.ts`) renewed while the close executes,
 * so a killed apply layer's lock frees itself within seconds.
 */
import { PoisonEntry, type StreamEntry } from '../../../adapters/redis/consumer.js';
import { Banned, RateLimited } from '../../../adapters/exchange/errors.js';
import { keys } from '../../../adapters/redis/keys.js';
import { Decimal, fmt, parseDecimal, roundDownToStep } from '../../../domain/decimal.js';
import { planEntryTooLarge, verifyPlanEntry } from '../../../domain/plan.js';
import { clientOrderIdFor, planTooOld } from '../../../domain/apply.js';
import type { SendGateReason } from '../../../domain/send-gate.js';
import { checkCloseHold, checkClosePlan, checkClosePosition, type CloseRule } from '../../../domain/close-guardrails.js';
import { readCloseMarker, readHold, releaseCloseMarker, renewHold, tradingHalted } from '../store.js';
import type { ApplyDeps } from '../deps.js';
import { publishOnly, resultFields } from '../results.js';
import { finalize } from '../record/record.js';
import { sendAndRecord } from '../send/send.js';
import { withSymbolLock } from '../send/symbol-lock.js';
import { QUIET_WAIT_MS, waitSymbolQuiet } from '../send/quiet.js';
import { claimOrResume, newToken } from '../claim/claim.js';

/** Why a correctly signed close was superseded (result reason) and its `reconcile_close_rejected_total` reason. */
type Superseded = { reason: 'drift_superseded' | 'hold_cleared' | 'close_expired' | SendGateReason; metric: 'superseded' | 'expired' };

/** Builds the handler of the RECONCILE_CLOSE stream. */
export function createCloseHandler(d: ApplyDeps) {
  return async (entry: StreamEntry, redelivered: boolean): Promise<void> => {
    let raw: Record<string, unknown> | null = null;
    try {
      if (planEntryTooLarge(entry.fields)) throw new Error('too large');
      const o = JSON.parse(entry.fields.plan ?? '') as unknown;
      if (o && typeof o === 'object' && !Array.isArray(o)) raw = o as Record<string, unknown>;
    } catch {
      raw = null;
    }
    const rawSym = typeof raw?.symbol === 'string' ? raw.symbol : '';
    const symbol = d.cfg.allowlist.includes(rawSym) ? rawSym : 'other';
    const planId = typeof raw?.plan_id === 'string' && /^[A-Za-z0-9:._-]{1,64}$/.test(raw.plan_id) ? raw.plan_id : '';
    d.metrics.closeConsumed.inc({ symbol });
    const base = { plan_id: planId, symbol: rawSym, decision: 'RECONCILE_CLOSE' };

    let claimedValue = '';
    // results are published under the plan id only once the MAC verified (never for an id a forged entry names)
    let verified = false;
    const reject = async (rule: CloseRule, detail: string, claimedEntry: string | null): Promise<void> => {
      d.metrics.closeGuardrailFail.inc({ symbol, rule });
      d.metrics.closeRejected.inc({ symbol, reason: 'guardrails' });
      d.logger.warn({ plan_id: planId, symbol: rawSym, rule, detail }, `[RECONCILE_CLOSE] ${rawSym}: INVARIANT VIOLATION rule=${rule}: ${detail}`);
      const f = resultFields({ ...base, status: 'REJECTED_GUARDRAIL', reason: rule, error: detail.slice(0, 300) });
      if (claimedEntry) await finalize(d, f, claimedEntry, '', undefined, claimedValue);
      else if (planId && verified) await publishOnly(d, f);
    };

    const supersede = async (why: Superseded, detail: string): Promise<void> => {
      d.metrics.closeRejected.inc({ symbol, reason: why.metric });
      d.logger.info({ plan_id: planId, symbol: rawSym, reason: why.reason, detail }, `[RECONCILE_CLOSE] ${rawSym}: plan ${planId} superseded (${why.reason}): ${detail}; nothing sent`);
      await finalize(d, resultFields({ ...base, status: 'SKIPPED', reason: why.reason, error: detail.slice(0, 300) }), entry.id, '', undefined, claimedValue);
    };
    const holdVerdict = (rule: CloseRule, detail: string): Promise<void> =>
      rule === 'hold_sig' ? supersede({ reason: 'drift_superseded', metric: 'superseded' }, detail) : rule === 'hold_key' ? supersede({ reason: 'hold_cleared', metric: 'superseded' }, detail) : reject(rule, detail, entry.id);

    if (!raw) {
      await reject('schema', 'plan is not a JSON object', null);
      throw new PoisonEntry('malformed', 'plan is not a JSON object');
    }
    if (raw.source !== 'p3.4') return reject('source', `source must be 'p3.4', got ${JSON.stringify(raw.source)}`, null);
    const key = d.cfg.p34Key;
    const v = verifyPlanEntry(entry.fields, () => key);
    if (!v.ok) {
      const rule: CloseRule = v.reason === 'invalid_schema' || v.reason === 'malformed' ? 'schema' : 'mac';
      await reject(rule, key ? v.detail : 'P3_KEY_P3_4 not configured', null);
      throw new PoisonEntry(v.reason, v.detail);
    }
    verified = true;
    // every forgery rule now; the age only after the claim (see the module comment)
    const stat = checkClosePlan({ raw, macOk: true, allowlist: d.cfg.allowlist, nowMs: Date.now(), maxAgeMs: Number.POSITIVE_INFINITY });
    if (!stat.ok) return reject(stat.rule, stat.detail, null);
    const plan = v.plan;
    const driftSig = plan.drift_sig as string;
    const side = plan.side as 'BUY' | 'SELL';

    const token = newToken(d.instanceId);
    const claimed = await claimOrResume(d, plan, entry, redelivered, token);
    if (claimed === null) return;
    claimedValue = claimed;
    if (planTooOld(plan.ts_ms, Date.now(), d.cfg.closeMaxAgeSec * 1000)) {
      return supersede({ reason: 'close_expired', metric: 'expired' }, `plan ts_ms ${plan.ts_ms} is older than APPLY_CLOSE_MAX_AGE_SEC=${d.cfg.closeMaxAgeSec}`);
    }

    // One close at a time per symbol (across every apply layer): the next close reads the position
    // after this one's fill, so one drift gives one close order even if several plans arrive.
    const locked = await withSymbolLock(d, plan.symbol, token, executeClose);
    if (!locked.taken) {
      if (d.signal.aborted) throw new Error('stopping');
      await finalize(d, resultFields({ ...base, status: 'FAILED', reason: 'close_in_progress', side, error: 'another RECONCILE_CLOSE of this symbol is still executing' }), entry.id, '', undefined, claimedValue);
      d.metrics.closeExecuted.inc({ symbol, status: 'error' });
      return;
    }

    // not an invariant violation: the one close of this drift already went out; this plan is its duplicate
    async function dropDuplicate(): Promise<void> {
      d.metrics.closeRejected.inc({ symbol, reason: 'duplicate' });
      d.logger.warn({ plan_id: plan.plan_id, drift_sig: driftSig }, `[RECONCILE_CLOSE] ${plan.symbol}: a close was already sent for drift ${driftSig}; plan ${plan.plan_id} dropped`);
      await finalize(d, resultFields({ ...base, status: 'DROPPED_DUPLICATE', dedupe_hit: 'true', reason: 'one_close_per_drift', side, error: `a close order was already sent for drift ${driftSig}` }), entry.id, '', undefined, claimedValue);
    }

    /**
     * The kill switch is a deliberate refusal, not an attack: SKIPPED `trading_halted`, counted under
     * reconcile_close_rejected_total{reason="trading_halted"} (never the guardrail-violation counter that
     * pages), the hold kept, the one-close marker untouched (it was never taken).
     */
    /** Not sent because trading is halted for the symbol (the kill switch, or its circuit breaker: `reason`). */
    async function refuseHalted(detail: string, reason = 'trading_halted'): Promise<void> {
      d.metrics.closeRejected.inc({ symbol, reason: 'trading_halted' });
      d.logger.warn({ plan_id: planId, symbol: rawSym, reason }, `[RECONCILE_CLOSE] ${rawSym}: not sent: ${detail}; hold kept (MANUAL_REQUIRED); p3 flatten or resume trading`);
      await finalize(d, resultFields({ ...base, status: 'SKIPPED', reason, side, qty: String(plan.qty), error: detail }), entry.id, '', undefined, claimedValue);
    }

    async function executeClose(): Promise<void> {
      const hold = checkCloseHold(await readHold(d.redis, plan.symbol), driftSig);
      if (!hold.ok) return holdVerdict(hold.rule, hold.detail);
      if (await tradingHalted(d.redis, plan.symbol)) return refuseHalted('trading HALTED (kill switch)');

      // The one close of this drift already went out (another plan of it, a backlog of two cooldown
      // buckets, another apply layer): this plan is its duplicate, whatever the position now says (a
      // flat position after that close would otherwise read as a `side` violation). applyBegin-13.lua
      // takes the marker atomically; this read only names the outcome early.
      const marker = await readCloseMarker(d.redis, plan.symbol, driftSig);
      if (marker !== null && marker !== clientOrderIdFor(plan.plan_id)) return dropDuplicate();

      if (d.cfg.mode === 'dry_run' || !d.gateway) {
        await finalize(d, resultFields({ ...base, status: 'SKIPPED', reason: 'dry_run', would_execute: 'true', side, qty: String(plan.qty) }), entry.id, '', undefined, claimedValue);
        return;
      }
      let qty: Decimal;
      let exchangeAmt: Decimal;
      let readTsMs: number;
      if (!(await waitSymbolQuiet(d, plan.symbol, clientOrderIdFor(plan.plan_id)))) {
        if (d.signal.aborted) throw new Error('stopping');
        return supersede({ reason: 'order_in_flight', metric: 'superseded' }, `another order of ${plan.symbol} stayed in flight for ${QUIET_WAIT_MS} ms`);
      }
      try {
        const rules = await d.gateway.symbolRules(plan.symbol);
        qty = roundDownToStep(parseDecimal(plan.qty) ?? new Decimal(0), rules.stepSize);
        readTsMs = Date.now(); // BEFORE the request: the conservative snapshot time of this order
        const positions = await d.gateway.fetchPositions();
        exchangeAmt = positions.positions.get(plan.symbol)?.amount ?? new Decimal(0);
      } catch (err) {
        const rl = err instanceof RateLimited || err instanceof Banned;
        d.metrics.closeExecuted.inc({ symbol, status: rl ? 'rate_limit' : 'error' });
        if (rl) d.metrics.closeRejected.inc({ symbol, reason: 'rate_limit' });
        await finalize(d, resultFields({ ...base, status: rl ? 'RETRYABLE_RATE_LIMIT' : 'FAILED', reason: rl ? 'rate_limited' : 'exchange_unavailable', would_execute: 'true', side, error: `${rl ? 'RETRYABLE_RATE_LIMIT: ' : ''}${(err as Error).message}` }), entry.id, '', undefined, claimedValue);
        return;
      }
      // The close was sized from `basis_amt`: if the position moved since (a fill of ours, a manual trade),
      // this close answers a drift that no longer exists; the engine sizes a new one on the new position.
      // A race, not an attack: SKIPPED, counted as superseded, the one-close marker never taken.
      const basis = typeof plan.basis_amt === 'string' ? parseDecimal(plan.basis_amt) : null;
      if (basis !== null && !basis.eq(exchangeAmt)) {
        d.metrics.closeRejected.inc({ symbol, reason: 'superseded' });
        d.logger.warn({ plan_id: plan.plan_id, basis_amt: plan.basis_amt, exchange_amt: fmt(exchangeAmt) }, `[RECONCILE_CLOSE] ${plan.symbol}: position moved from ${plan.basis_amt} to ${fmt(exchangeAmt)} since the close was sized; not sent (a newer close follows)`);
        await finalize(d, resultFields({ ...base, status: 'SKIPPED', reason: 'close_superseded', side, qty: String(plan.qty), error: `sized on position ${plan.basis_amt}, position now ${fmt(exchangeAmt)}` }), entry.id, '', undefined, claimedValue);
        return;
      }
      const pos = checkClosePosition(qty, side, exchangeAmt);
      if (!pos.ok) return reject(pos.rule, `${pos.detail} (exchange_amt=${fmt(exchangeAmt)})`, entry.id);

      const renewed = await renewHold(d.redis, plan.symbol, driftSig, d.cfg.holdTtlSec);
      if (renewed !== 'renewed') return holdVerdict(renewed === 'no_hold' ? 'hold_key' : 'hold_sig', `hold changed before sending (${renewed})`);
      d.logger.info({ plan_id: plan.plan_id, ttl_s: d.cfg.holdTtlSec }, `[RECONCILE_CLOSE] ${plan.symbol}: HOLD lease renewed (TTL=${d.cfg.holdTtlSec}s)`);

      const r = await sendAndRecord(d, { planId: plan.plan_id, entryId: entry.id, decision: 'RECONCILE_CLOSE', symbol: plan.symbol, side, qty, reduceOnly: true, claimedValue, token, driftSig, basisAmt: fmt(exchangeAmt), snapshotTsMs: readTsMs });
      if (r.kind === 'unresolved') throw new Error(r.error);
      if (r.kind === 'hold_changed') return holdVerdict('hold_sig', 'hold or its signature changed just before sending');
      if (r.kind === 'halted') return refuseHalted('trading HALTED (kill switch) just before sending');
      if (r.kind === 'refused') return refuseHalted(r.detail, r.reason);
      if (r.kind === 'gated') return supersede({ reason: r.reason, metric: 'superseded' }, `send-time gate: ${r.reason} (position read at ${readTsMs} ms)`);
      if (r.kind === 'close_already_sent') return dropDuplicate();
      if (r.kind !== 'recorded') return;
      const f = r.fields;
      // not executed, or filled only partly: release the one-close-per-drift marker so the remaining
      // drift is closed by the next cooldown bucket (the next pass sees a new, smaller drift)
      if (f.status !== 'EXECUTED' || f.reason === 'partial_fill') await releaseCloseMarker(d.redis, plan.symbol, driftSig, clientOrderIdFor(plan.plan_id));
      const status = f.status === 'EXECUTED' ? 'success' : f.status === 'RETRYABLE_RATE_LIMIT' ? 'rate_limit' : 'error';
      if (r.recorded) d.metrics.closeExecuted.inc({ symbol, status });
      if (f.status === 'RETRYABLE_RATE_LIMIT') {
        d.metrics.closeRejected.inc({ symbol, reason: 'rate_limit' });
        d.logger.error({ plan_id: plan.plan_id }, `[RECONCILE_CLOSE] ${plan.symbol}: RATE LIMITED - HOLD remains, will retry on next cooldown bucket`);
      }
      if (f.status === 'EXECUTED') {
        d.logger.info(
          { plan_id: plan.plan_id, order_id: f.order_id, reconcile_close: true },
          `[RECONCILE_CLOSE_AUDIT] reconcile_close=true symbol=${plan.symbol} qty=${f.filled_qty} side=${side} order_id=${f.order_id} plan_id=${plan.plan_id} hold_key=${keys.hold(plan.symbol)} exchange_amt=${fmt(exchangeAmt)}`,
        );
      }
    }
  };
}
