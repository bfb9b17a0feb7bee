/**
 * Handler of `quantum:stream:apply.flatten`: an operator's FLATTEN plans (`p3 flatten`; docs/architecture.md#plans, docs/architecture.md#risk-limits-and-trading-states).
 *
 * - The entry's MAC must verify with `P3_KEY_OPERATOR` and the plan pass `checkFlattenPlan` (source
 *   operator, FLATTEN, MARKET, reduceOnly true, reason, allowlist, age), else `REJECTED_INVALID` with the
 *   rule, logged, acked, dead-lettered (unverifiable entries) — never an order.
 * - Exactly once like every plan: dedupe claim, deterministic client order id, in-flight resolution.
 * - No permits, no hold check, no trading-state check: it is what an operator sends while the kill switch
 *   is on. The order is sized from the position read fresh from the exchange (`flattenOrder`: the whole
 *   |position| rounded down to the lot step, side opposite, reduce-only); a flat position is `SKIPPED
 *   already_flat`.
 * - Its fill is not written to the ledger here: like a RECONCILE_CLOSE fill it is the reconcile engine's
 *   evidence, which sets the ledger flat once the exchange is flat after it (docs/architecture.md#heal-target).
 * - Never sized from a position about to move: it takes the per-symbol close lock (no RECONCILE_CLOSE or
 *   other FLATTEN of the symbol at the same time; a short renewed lease, `send/symbol-lock.ts`) and waits (at
 *   most `QUIET_WAIT_MS`) until no order of the symbol is in flight (an EXECUTE sent just before a halt);
 *   else FAILED `order_in_flight`. It then goes through the send-time gate (src/domain/send-gate.ts) like
 *   every order: refused (`SKIPPED snapshot_superseded`) if a fill was recorded after its position read.
 * - Events `FLATTEN_EXECUTED` (with the position read again after the fill, `exchange_amt_after`) /
 *   `FLATTEN_SKIPPED` / `FLATTEN_FAILED` on `quantum:stream:reconcile.events` name who asked.
 */
import { PoisonEntry, type StreamEntry } from '../../../adapters/redis/consumer.js';
import { Banned, RateLimited } from '../../../adapters/exchange/errors.js';
import { Decimal, fmt } from '../../../domain/decimal.js';
import { verifyPlanEntry } from '../../../domain/plan.js';
import { checkFlattenPlan, flattenOrder, OPERATOR_SOURCE } from '../../../domain/flatten.js';
import { clientOrderIdFor } from '../../../domain/apply.js';
import { appendEvent } from '../store.js';
import type { ApplyDeps } from '../deps.js';
import { publishOnly, resultFields } from '../results.js';
import { finalize } from '../record/record.js';
import { sendAndRecord } from '../send/send.js';
import { QUIET_WAIT_MS, waitSymbolQuiet } from '../send/quiet.js';
import { withSymbolLock } from '../send/symbol-lock.js';
import { claimOrResume, newToken } from '../claim/claim.js';
import { EVENT } from '../../../domain/events.js';

/** Builds the handler of the FLATTEN stream. */
export function createFlattenHandler(d: ApplyDeps) {
  const event = async (fields: Record<string, string>): Promise<void> => {
    await appendEvent(d.redis, fields).catch(() => undefined);
  };

  return async (entry: StreamEntry, redelivered: boolean): Promise<void> => {
    const key = d.cfg.operatorKey;
    const v = verifyPlanEntry(entry.fields, (source) => (source === OPERATOR_SOURCE ? key : undefined));
    if (!v.ok) {
      const detail = key ? v.detail : 'P3_KEY_OPERATOR is not configured on this apply layer: FLATTEN refused';
      d.logger.warn({ entry_id: entry.id, reason: v.reason, detail }, `[FLATTEN] entry ${entry.id} refused: ${v.reason}: ${detail}`);
      // a result only when the MAC verified (planId is set then): never for a plan id an unverified entry names
      if (v.planId !== undefined && /^[A-Za-z0-9:._-]{1,64}$/.test(v.planId)) await publishOnly(d, resultFields({ plan_id: v.planId, symbol: '', decision: 'FLATTEN', status: 'REJECTED_INVALID', reason: v.reason, error: detail }));
      throw new PoisonEntry(v.reason, detail);
    }
    const plan = v.plan;
    const base = { plan_id: plan.plan_id, symbol: plan.symbol, decision: 'FLATTEN' };
    const asked = typeof v.raw.reason === 'string' ? v.raw.reason : '';
    const check = checkFlattenPlan(v.raw, d.cfg.allowlist, Date.now(), d.cfg.maxPlanAgeSec * 1000);
    if (!check.ok) {
      d.logger.warn({ plan_id: plan.plan_id, rule: check.rule }, `[FLATTEN] ${plan.symbol}: plan ${plan.plan_id} refused: ${check.rule}: ${check.detail}`);
      await publishOnly(d, resultFields({ ...base, status: 'REJECTED_INVALID', reason: check.rule, error: check.detail }));
      return;
    }
    const token = newToken(d.instanceId);
    const claimed = await claimOrResume(d, plan, entry, redelivered, token);
    if (claimed === null) return;
    const done = (f: Parameters<typeof resultFields>[0]) => finalize(d, resultFields(f), entry.id, '', undefined, claimed);

    if (d.cfg.mode === 'dry_run' || !d.gateway) {
      await done({ ...base, status: 'SKIPPED', reason: 'dry_run', would_execute: 'true' });
      return;
    }
    // the per-symbol close lock: a short lease renewed while the flatten runs (send/symbol-lock.ts)
    const locked = await withSymbolLock(d, plan.symbol, token, () => flatten(claimed));
    if (!locked.taken) {
      if (d.signal.aborted) throw new Error('stopping');
      await done({ ...base, status: 'FAILED', reason: 'close_in_progress', error: 'another close or flatten of this symbol is still executing; run p3 flatten again' });
      return;
    }

    async function flatten(claimedValue: string): Promise<void> {
      const g = d.gateway!;
      // the send-time gate: no other order in flight, and a position read newer than the newest fill
      if (!(await waitSymbolQuiet(d, plan.symbol, clientOrderIdFor(plan.plan_id)))) {
        if (d.signal.aborted) throw new Error('stopping');
        await done({ ...base, status: 'FAILED', reason: 'order_in_flight', error: `an order of ${plan.symbol} is still in flight after ${QUIET_WAIT_MS} ms; run p3 flatten again` });
        return;
      }
      let order: ReturnType<typeof flattenOrder>;
      let position: string;
      let readTsMs: number;
      try {
        const rules = await g.symbolRules(plan.symbol);
        readTsMs = Date.now(); // BEFORE the request: the conservative snapshot time of this order
        // a successful answer lists every open position; a symbol absent from it is flat
        const pos = (await g.fetchPositions()).positions.get(plan.symbol)?.amount ?? new Decimal(0);
        position = fmt(pos);
        order = flattenOrder(pos, rules.stepSize);
      } catch (err) {
        const rl = err instanceof RateLimited || err instanceof Banned;
        await done({ ...base, status: rl ? 'RETRYABLE_RATE_LIMIT' : 'FAILED', reason: rl ? 'rate_limited' : 'exchange_unavailable', would_execute: 'true', error: (err as Error).message });
        return;
      }
      if (order === null) {
        await done({ ...base, status: 'SKIPPED', reason: 'already_flat', error: `exchange position ${position} (nothing to close at this lot step)` });
        await event({ event: EVENT.FLATTEN_SKIPPED, symbol: plan.symbol, plan_id: plan.plan_id, exchange_amt: position, requested_by: asked, ts_ms: String(Date.now()) });
        return;
      }
      d.logger.warn({ plan_id: plan.plan_id, side: order.side, qty: fmt(order.qty), requested_by: asked }, `[FLATTEN] ${plan.symbol}: sending ${order.side} ${fmt(order.qty)} reduceOnly (position ${position}) for ${asked}`);
      const r = await sendAndRecord(d, { planId: plan.plan_id, entryId: entry.id, decision: 'FLATTEN', symbol: plan.symbol, side: order.side, qty: order.qty, reduceOnly: true, claimedValue, token, basisAmt: position, snapshotTsMs: readTsMs });
      if (r.kind === 'unresolved') throw new Error(r.error); // stays pending: redelivery or the sweep resolves it by client order id
      if (r.kind === 'gated') {
        await done({ ...base, status: 'SKIPPED', reason: r.reason, side: order.side, qty: fmt(order.qty), error: `send-time gate: ${r.reason}; run p3 flatten again` });
        return;
      }
      if (r.kind === 'refused') {
        await done({ ...base, status: 'SKIPPED', reason: r.reason, side: order.side, qty: fmt(order.qty), error: r.detail });
        return;
      }
      if (r.kind !== 'recorded') return;
      const f = r.fields;
      let after = '';
      if (f.status === 'EXECUTED') {
        after = await g
          .fetchPositions()
          .then((p) => fmt(p.positions.get(plan.symbol)?.amount ?? new Decimal(0)))
          .catch(() => '');
        if (after !== '' && after !== '0') d.logger.error({ plan_id: plan.plan_id, exchange_amt_after: after }, `[FLATTEN] ${plan.symbol}: position still ${after} after the flatten: run p3 flatten again`);
      }
      await event({
        event: f.status === 'EXECUTED' ? EVENT.FLATTEN_EXECUTED : EVENT.FLATTEN_FAILED,
        symbol: plan.symbol,
        plan_id: plan.plan_id,
        status: f.status,
        side: order.side,
        qty: fmt(order.qty),
        filled_qty: f.filled_qty,
        order_id: f.order_id,
        exchange_amt: position,
        exchange_amt_after: after,
        requested_by: asked,
        ts_ms: String(Date.now()),
      });
    }
  };
}
