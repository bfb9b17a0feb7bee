/**
 * Handler of `quantum:stream:apply.plan` entries (EXECUTE plans), in this order (docs/architecture.md#plans, docs/architecture.md#exactly-once-execution):
 * 1. verify size, MAC and schema, else dead letter (plus `REJECTED_INVALID` under the plan id only when the MAC
 *    verified: an entry whose MAC does not verify never gets a result under the plan id it names);
 * 2. `SET quantum:apply:dedupe:<plan_id> claimed|<entry>|<token> NX EX 86400`; a duplicate gives
 *    `DROPPED_DUPLICATE` (`dedupe_hit=true`, no order) — except a REDELIVERED entry whose own
 *    processing was interrupted: stage `claimed` resumes (no order was sent yet), stage `sending` is
 *    resolved by client order id lookup (never re-sent);
 * 3. allowlist, type MARKET, plan age;
 * 4. bounded wait for both permits (until `APPLY_PERMIT_WAIT_MS`): the plan re-reads its permits as
 *    soon as a permit of it is written (the issuers publish on `quantum:notify:permit` in the same step
 *    as the write, `permit-waker.ts`), and at the latest every `APPLY_PERMIT_POLL_MS` (default 100 ms, the
 *    fallback for a lost notification); decides at once on the second ALLOW, and at once on a DENY;
 *    a permit whose signature does not verify for this plan, entry and payload (`P3_KEY_GOVERNOR`,
 *    `P3_KEY_P33`; a permit without a plan digest included) is a DENY: `SKIPPED
 *    permit_signature_invalid`, counted and logged; a genuine permit of this plan id and entry decided for
 *    another payload (its `plan_digest` is not the digest of the entry's `plan` string) is `SKIPPED
 *    permit_plan_mismatch`, counted (`apply_permit_plan_mismatch_total`) and logged;
 * 5. dry_run: `SKIPPED reason=dry_run would_execute=true`, nothing sent, ledger untouched;
 * 6. order: MARKET, reduce-only for exits, p33 permit qty rounded down to the lot step, deterministic
 *    client order id; result + ledger update in one atomic step;
 * 7. the send-time gate (src/domain/send-gate.ts), atomic with marking the order in flight: an
 *    order is never sent from a permit whose snapshot (`snapshot_ts_ms` of the p33 permit) predates the
 *    symbol's newest fill or while another order of the symbol is in flight: `SKIPPED` with reason
 *    `snapshot_superseded` / `order_in_flight` / `snapshot_unknown`, nothing sent. Two exits sized on one
 *    snapshot (two PARTIAL_50 back to back) give one order; the strategy re-submits the second, and its
 *    new permit is sized on a snapshot taken after the first one's fill.
 */
import { PoisonEntry, type StreamEntry } from '../../../adapters/redis/consumer.js';
import { RateLimited, Banned } from '../../../adapters/exchange/errors.js';
import { verifyPlanEntry, type Plan } from '../../../domain/plan.js';
import { fmt } from '../../../domain/decimal.js';
import { evaluatePermits, orderQty, planTooOld, reduceOnlyFor, type PermitHash, type PermitVerdict } from '../../../domain/apply.js';
import { sleep } from '../../../lib/sleep.js';
import { checkPermitSignatures, planDigest, type PermitBinding } from '../../../domain/permit-signature.js';
import { permitSnapshotTs } from '../../../domain/send-gate.js';
import { readPermits } from '../store.js';
import type { ArmedWake } from '../permit-waker.js';
import type { ApplyDeps } from '../deps.js';
import { publishOnly, resultFields } from '../results.js';
import { finalize } from '../record/record.js';
import { sendAndRecord } from '../send/send.js';
import { claimOrResume, newToken } from '../claim/claim.js';
import { PRODUCER_CLOCK_SKEW_MS } from '../claim/durability.js';

/** True when `a` has exactly the fields and values of `b` (b null: false). */
function sameHash(a: PermitHash, b: PermitHash | null): boolean {
  if (!b) return false;
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  for (const k of ka) if (a[k] !== b[k]) return false;
  return true;
}

/** The time part of a stream entry id (`<ms>-<seq>`: when Redis added it, by the Redis server's clock), epoch ms. */
function entryTimeMs(entryId: string): number {
  const ms = Number(entryId.split('-')[0]);
  return Number.isFinite(ms) ? ms : 0;
}

/** The older of two permits' `ts_ms` (epoch ms of their issuers), null when either is missing or unreadable. */
function olderPermitTs(gov: PermitHash, p33: PermitHash): number | null {
  const a = Number(gov.ts_ms);
  const b = Number(p33.ts_ms);
  return /^\d+$/.test(gov.ts_ms ?? '') && /^\d+$/.test(p33.ts_ms ?? '') ? Math.min(a, b) : null;
}

/** The first permit read of a plan, sent with its claim (one pipeline, tick-batch.ts), its wake-up armed before. */
interface EarlyRead {
  wake: ArmedWake | undefined;
  read: Promise<{ gov: PermitHash; p33: PermitHash }>;
}

/** Arms the plan's wake-up and issues its first permit read (both before the claim is sent). */
function earlyRead(d: ApplyDeps, planId: string): EarlyRead {
  const wake = d.waker?.arm(planId);
  const read = readPermits(d.redis, planId);
  read.catch(() => undefined); // awaited by waitPermits (and thrown there), or dropped with the plan
  return { wake, read };
}

/**
 * Waits for both permits (see module comment): reads them, and while one is missing waits for a permit
 * notification of this plan (`d.waker`, armed before each read so none is missed) or the fallback
 * interval `permitPollMs`, whichever comes first, then reads again, up to `permitWaitMs` in all.
 */
async function waitPermits(d: ApplyDeps, plan: Plan, binding: PermitBinding, first?: EarlyRead): Promise<PermitVerdict & { waitedMs: number; snapshotTsMs: number | null; permitTsMs?: number | null; reserved?: boolean }> {
  const t0 = Date.now();
  const { entryId } = binding;
  let early = first;
  // permits whose signature verified on an earlier read of this wait: a re-read that returns exactly the
  // same hash (every field, signature included) is not verified again; any difference is verified
  const verified: Record<'governor' | 'p33', PermitHash | null> = { governor: null, p33: null };
  for (;;) {
    const wake = early ? early.wake : d.waker?.arm(plan.plan_id);
    try {
      const { gov, p33 } = await (early ? early.read : readPermits(d.redis, plan.plan_id));
      early = undefined;
      const waitedMs = Date.now() - t0;
      const forged = checkPermitSignatures(d.cfg.permitKeys, binding, { governor: sameHash(gov, verified.governor) ? {} : gov, p33: sameHash(p33, verified.p33) ? {} : p33 });
      if (!forged) {
        if (Object.keys(gov).length > 0) verified.governor = gov;
        if (Object.keys(p33).length > 0) verified.p33 = p33;
      }
      if (forged?.problem === 'other_entry') {
        return { kind: 'skip', reason: 'permit_mismatch', detail: `${forged.issuer} permit decided another entry of plan ${plan.plan_id}`, waitedMs, snapshotTsMs: null };
      }
      if (forged?.problem === 'other_payload') {
        d.metrics.permitPlanMismatch.inc({ symbol: plan.symbol, issuer: forged.issuer });
        d.logger.error(
          { plan_id: plan.plan_id, symbol: plan.symbol, entry_id: entryId, issuer: forged.issuer, plan_digest: binding.planDigest },
          `${plan.symbol}: plan ${plan.plan_id} ${forged.issuer} permit was decided for another payload of this plan id and entry; treated as DENY, nothing sent`,
        );
        return { kind: 'skip', reason: 'permit_plan_mismatch', detail: `${forged.issuer} permit decided another payload of plan ${plan.plan_id} entry ${entryId}`, waitedMs, snapshotTsMs: null };
      }
      if (forged) {
        d.metrics.permitSignatureInvalid.inc({ symbol: plan.symbol, issuer: forged.issuer });
        d.logger.error(
          { plan_id: plan.plan_id, symbol: plan.symbol, entry_id: entryId, issuer: forged.issuer, problem: forged.problem },
          `${plan.symbol}: plan ${plan.plan_id} ${forged.issuer} permit signature invalid (${forged.problem}); treated as DENY, nothing sent`,
        );
        return { kind: 'skip', reason: 'permit_signature_invalid', detail: `${forged.issuer} permit ${forged.problem}`, waitedMs, snapshotTsMs: null };
      }
      const v = evaluatePermits(gov, p33, plan, entryId);
      if (v.kind !== 'wait') return { ...v, waitedMs, snapshotTsMs: permitSnapshotTs(p33), permitTsMs: olderPermitTs(gov, p33), reserved: gov.reserved === '1' };
      if (waitedMs >= d.cfg.permitWaitMs || d.signal.aborted) return { kind: 'skip', reason: 'permit_timeout', detail: `permits missing after ${waitedMs} ms`, waitedMs, snapshotTsMs: null };
      const left = Math.min(d.cfg.permitPollMs, d.cfg.permitWaitMs - waitedMs);
      if (wake) await wake.wait(left, d.signal);
      else await sleep(left, d.signal);
    } finally {
      wake?.disarm();
    }
  }
}

/** Builds the handler of the plan stream. */
export function createPlanHandler(d: ApplyDeps, keyFor: (source: string) => string | undefined) {
  return async (entry: StreamEntry, redelivered: boolean): Promise<void> => {
    d.metrics.plansConsumed.inc();
    const v = verifyPlanEntry(entry.fields, keyFor);
    if (!v.ok) {
      // a result only for an authentic plan (its MAC verified, its schema did not): an entry anyone with write
      // access to the stream could have added never gets a result under a plan id it chose
      if (v.planId !== undefined && /^[A-Za-z0-9:._-]{1,64}$/.test(v.planId)) {
        await publishOnly(d, resultFields({ plan_id: v.planId, symbol: '', decision: '', status: 'REJECTED_INVALID', reason: v.reason, error: v.detail.slice(0, 300) }));
      }
      throw new PoisonEntry(v.reason, v.detail);
    }
    const plan = v.plan;
    const base = { plan_id: plan.plan_id, symbol: plan.symbol, decision: plan.decision };
    if (plan.decision !== 'EXECUTE') {
      await publishOnly(d, resultFields({ ...base, status: 'REJECTED_INVALID', reason: 'wrong_stream', error: 'RECONCILE_CLOSE plans are only accepted on quantum:stream:reconcile.close' }));
      throw new PoisonEntry('wrong_stream', 'RECONCILE_CLOSE on the plan stream');
    }
    const token = newToken(d.instanceId);
    // a plan that will wait for its permits (the checks below, evaluated again after the claim) has its
    // first permit read sent with its claim: one round trip for both; the read is used only
    // once the plan is claimed
    const first = d.cfg.allowlist.includes(plan.symbol) && plan.type === 'MARKET' && !planTooOld(plan.ts_ms, Date.now(), d.cfg.maxPlanAgeSec * 1000) ? earlyRead(d, plan.plan_id) : undefined;
    let claimed: string | null;
    try {
      claimed = await claimOrResume(d, plan, entry, redelivered, token);
    } catch (err) {
      first?.wake?.disarm();
      throw err;
    }
    if (claimed === null) return void first?.wake?.disarm();

    const done = (f: Parameters<typeof resultFields>[0]) => finalize(d, resultFields(f), entry.id, '', undefined, claimed);
    if (!d.cfg.allowlist.includes(plan.symbol)) return void (await done({ ...base, status: 'REJECTED_INVALID', reason: 'symbol_not_allowed' }));
    if (plan.type !== 'MARKET') return void (await done({ ...base, status: 'REJECTED_INVALID', reason: 'unsupported_type', error: `type ${plan.type}` }));
    // The plan's ts_ms is trusted within PRODUCER_CLOCK_SKEW_MS by the duplicate protection (claim/durability.ts):
    // a plan dated after the moment Redis added its entry (the entry id's time) by more than that comes from a
    // producer whose clock is ahead, and is refused before anything can be sent for it
    if (plan.ts_ms > entryTimeMs(entry.id) + PRODUCER_CLOCK_SKEW_MS) {
      first?.wake?.disarm();
      return void (await done({ ...base, status: 'SKIPPED', reason: 'plan_from_future', error: `plan ts_ms ${plan.ts_ms} is ${plan.ts_ms - entryTimeMs(entry.id)} ms after its stream entry was added (producer clock ahead by more than ${PRODUCER_CLOCK_SKEW_MS} ms)` }));
    }
    if (planTooOld(plan.ts_ms, Date.now(), d.cfg.maxPlanAgeSec * 1000)) {
      first?.wake?.disarm();
      return void (await done({ ...base, status: 'SKIPPED', reason: 'stale_plan' }));
    }

    // the permits must have been decided for this entry's exact payload (the `plan` string its mac verified)
    const permits = await waitPermits(d, plan, { planId: plan.plan_id, entryId: entry.id, planDigest: planDigest(entry.fields.plan ?? '') }, first);
    if (d.signal.aborted) throw new Error('stopping');
    d.metrics.permitWait.observe({ outcome: permits.kind === 'allow' ? 'allow' : permits.kind === 'skip' && permits.reason !== 'permit_timeout' ? 'deny' : 'timeout' }, permits.waitedMs / 1000);
    if (permits.kind !== 'allow') return void (await done({ ...base, status: 'SKIPPED', reason: permits.kind === 'skip' ? permits.reason : 'permit_timeout', error: permits.kind === 'skip' ? permits.detail : '' }));

    const reduceOnly = reduceOnlyFor(plan);
    if (d.cfg.mode === 'dry_run' || !d.gateway) {
      return void (await done({ ...base, status: 'SKIPPED', reason: 'dry_run', would_execute: 'true', side: permits.side, qty: fmt(permits.qty) }));
    }
    let qty;
    try {
      const rules = await d.gateway.symbolRules(plan.symbol);
      qty = orderQty(permits.qty, rules.stepSize, rules.minQty);
    } catch (err) {
      const rl = err instanceof RateLimited || err instanceof Banned;
      return void (await done({ ...base, status: rl ? 'RETRYABLE_RATE_LIMIT' : 'FAILED', reason: rl ? 'rate_limited' : 'symbol_rules_unavailable', would_execute: 'true', error: (err as Error).message }));
    }
    if (qty === null) return void (await done({ ...base, status: 'SKIPPED', reason: 'qty_below_lot', side: permits.side, qty: fmt(permits.qty) }));
    // entries: the position must still have the sign the permits were sized on (OPEN: flat; INCREASE: the plan's side)
    const expectSign = plan.action === 'OPEN' ? 0 : plan.action === 'INCREASE' ? (permits.side === 'BUY' ? 1 : -1) : undefined;
    if (expectSign !== undefined) {
      // An entry is not reduce-only: nothing at the exchange stops it from flipping a position that moved
      // since the snapshot (a manual trade the snapshot has not shown yet; found by p3 chaos, seed 12). Read
      // the position FRESH from the exchange, as closes do; the snapshot check in applyBegin stays as well.
      let fresh: number;
      try {
        const amt = (await d.gateway.fetchPositions()).positions.get(plan.symbol)?.amount;
        fresh = amt === undefined || amt.isZero() ? 0 : amt.isNeg() ? -1 : 1;
      } catch (err) {
        const rl = err instanceof RateLimited || err instanceof Banned;
        return void (await done({ ...base, status: rl ? 'RETRYABLE_RATE_LIMIT' : 'FAILED', reason: rl ? 'rate_limited' : 'exchange_unavailable', would_execute: 'true', side: permits.side, qty: fmt(qty), error: `position not readable before an entry: ${(err as Error).message}` }));
      }
      if (fresh !== expectSign) {
        return void (await done({ ...base, status: 'SKIPPED', reason: 'position_changed', side: permits.side, qty: fmt(qty), error: `the exchange position's side changed since the permits were sized (no entry ever flips a position)` }));
      }
    }
    const r = await sendAndRecord(d, { planId: plan.plan_id, entryId: entry.id, decision: plan.decision, symbol: plan.symbol, side: permits.side, qty, reduceOnly, claimedValue: claimed, token, expectSign, snapshotTsMs: permits.snapshotTsMs, permitTsMs: permits.permitTsMs ?? null, reserved: permits.reserved === true, refPrice: plan.ref_price ?? null });
    if (r.kind === 'refused') return void (await done({ ...base, status: 'SKIPPED', reason: r.reason, side: permits.side, qty: fmt(qty), error: r.detail }));
    if (r.kind === 'gated') {
      const detail = r.reason === 'snapshot_unknown' ? 'the p33 permit carries no snapshot_ts_ms' : r.reason === 'order_in_flight' ? 'another order of the symbol was in flight at send time' : `permit sized on snapshot ${permits.snapshotTsMs}, older than the symbol's newest fill`;
      return void (await done({ ...base, status: 'SKIPPED', reason: r.reason, side: permits.side, qty: fmt(qty), error: detail }));
    }
    if (r.kind === 'held') return void (await done({ ...base, status: 'SKIPPED', reason: 'reconcile_hold_active', side: permits.side, qty: fmt(qty), error: 'hold set after the permits were issued' }));
    if (r.kind === 'position_changed') return void (await done({ ...base, status: 'SKIPPED', reason: 'position_changed', side: permits.side, qty: fmt(qty), error: 'the position changed side since the permits were sized (no entry ever flips a position)' }));
    if (r.kind === 'halted') return void (await done({ ...base, status: 'SKIPPED', reason: 'trading_halted', side: permits.side, qty: fmt(qty), error: 'trading HALTED (kill switch) after the permits were issued' }));
    if (r.kind === 'unresolved') throw new Error(r.error); // entry stays pending; redelivery or the sweep resolves it
  };
}
