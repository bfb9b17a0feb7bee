/**
 * An entry's exposure reservation covers it until its result is final, however late the apply layer sends it
 * (real Redis, the governor's real reservation step and the apply layer's real send step, applyBegin-13.lua).
 *
 * The hostile review's case: the governor's reservation expired with the 60 s permit whatever happened, and the
 * apply layer never checked a permit's age; an apply layer behind a backlog (or ccxt's throttle queue) read the
 * permits at 58 s and sent at 62 s, and at 60.5 s a second decision no longer counted the first entry: two 9k
 * entries against a 10k gross limit ended at 18k.
 *
 * Property (fast-check): over generated interleavings of governor decisions (by several governors: any order),
 * the passing of time past permits' validity, apply-layer sends (claim, then the atomic send step) and fills
 * (the position shown by a newer snapshot, the plan's result final), the entries at the exchange never exceed
 * the gross limit at any step: with 9k entries against 10k, at most one is ever sent.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { keys } from '../../src/adapters/redis/keys.js';
import { Decimal } from '../../src/domain/decimal.js';
import { dedupeValue } from '../../src/domain/apply.js';
import { reserveExposure } from '../../src/services/governor/exposure.js';
import { beginSend, claimPlan, type OrderRecord } from '../../src/services/apply-layer/store.js';
import { useTestRedis } from '../helpers/redis.js';

const h = useTestRedis();
const SYMBOLS = ['AAAUSDT', 'BBBUSDT', 'CCCUSDT'];
const MARK = new Decimal(1000);
const QTY = new Decimal(9); // 9,000 USD each
const LIMITS = { maxPositionUsd: null, maxGrossUsd: new Decimal(10_000) };
const PERMIT_TTL_MS = 60_000;

beforeEach(async () => {
  await h.redis.flushdb();
});

type Cmd = { kind: 'decide'; plan: number } | { kind: 'time'; ms: number } | { kind: 'send'; plan: number } | { kind: 'fill'; plan: number };

const cmd: fc.Arbitrary<Cmd> = fc.oneof(
  fc.record({ kind: fc.constant('decide' as const), plan: fc.integer({ min: 0, max: 2 }) }),
  fc.record({ kind: fc.constant('time' as const), ms: fc.constantFrom(1_000, 30_000, 59_000, 61_000) }),
  fc.record({ kind: fc.constant('send' as const), plan: fc.integer({ min: 0, max: 2 }) }),
  fc.record({ kind: fc.constant('fill' as const), plan: fc.integer({ min: 0, max: 2 }) }),
);

describe('exposure reservations hold until the entry is final (generated interleavings)', () => {
  it('the gross limit holds at every step, whatever the delay between permit and send', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(cmd, { minLength: 1, maxLength: 14 }), async (cmds) => {
        await h.redis.flushdb();
        // the governors' clock (a reservation's expiry is on it); starts at the real time
        let now = Date.now();
        const snapshot = async (sym: string, amt: string) =>
          h.redis.hset(keys.snapshot(sym), { position_amt: amt, side: amt === '0' ? 'FLAT' : 'LONG', mark_price: '1000', ts_ms: String(Date.now()), ts_epoch: String(Date.now() / 1000) });
        for (const s of SYMBOLS) await snapshot(s, '0');
        const planIdOf = (p: number) => `exp-${p}`;
        const allowed = new Set<number>();
        const sent = new Set<number>();
        const filled = new Set<number>();
        for (const c of cmds) {
          if (c.kind === 'time') now += c.ms;
          if (c.kind === 'decide' && !allowed.has(c.plan)) {
            const sym = SYMBOLS[c.plan]!;
            const v = await reserveExposure(h.redis, { planId: planIdOf(c.plan), symbol: sym, qty: QTY, mark: MARK, position: new Decimal(0), ttlMs: PERMIT_TTL_MS }, SYMBOLS, LIMITS, now);
            if (v.ok) allowed.add(c.plan);
          }
          if (c.kind === 'send' && allowed.has(c.plan) && !sent.has(c.plan)) {
            const id = planIdOf(c.plan);
            const sym = SYMBOLS[c.plan]!;
            const claim = await claimPlan(h.redis, id, '1-0', 'tok');
            if (!claim.claimed) continue;
            const rec: OrderRecord = { plan_id: id, entry_id: '1-0', symbol: sym, side: 'BUY', qty: '9', reduce_only: 'false', decision: 'EXECUTE', dedupe: dedupeValue('sending', '1-0', 'tok'), ts_ms: String(Date.now()) };
            const r = await beginSend(h.redis, `cid-${id}`, rec, claim.value, 60, undefined, Date.now(), 'execute', null, true);
            if (r === 'sending') sent.add(c.plan);
            else await h.redis.set(keys.applyDedupe(id), dedupeValue('done', '1-0', 'SKIPPED'), 'KEEPTTL'); // not sent: its result is final
          }
          if (c.kind === 'fill' && sent.has(c.plan) && !filled.has(c.plan)) {
            // the order filled: result final, the fill recorded, then a newer snapshot shows the position
            const id = planIdOf(c.plan);
            const sym = SYMBOLS[c.plan]!;
            await h.redis.multi().set(keys.applyDedupe(id), dedupeValue('done', '1-0', 'EXECUTED'), 'KEEPTTL').set(keys.lastFill(sym), String(Date.now())).hdel(keys.applyInflight(sym), `cid-${id}`).exec();
            await new Promise((r) => setTimeout(r, 2));
            await snapshot(sym, '9');
            filled.add(c.plan);
          }
          // 9k each against a 10k gross limit: never two at the exchange
          expect(sent.size).toBeLessThanOrEqual(1);
        }
      }),
      { numRuns: 150 },
    );
  }, 120_000);

  it('per-symbol and gross limits together, several entries per symbol: each limit holds at every step', async () => {
    const limits = { maxPositionUsd: new Decimal(10_000), maxGrossUsd: new Decimal(20_000) };
    const symbolOf = (p: number) => SYMBOLS[p % 3]!;
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.oneof(
            fc.record({ kind: fc.constant('decide' as const), plan: fc.integer({ min: 0, max: 4 }) }),
            fc.record({ kind: fc.constant('time' as const), ms: fc.constantFrom(1_000, 59_000, 61_000) }),
            fc.record({ kind: fc.constant('send' as const), plan: fc.integer({ min: 0, max: 4 }) }),
            fc.record({ kind: fc.constant('fill' as const), plan: fc.integer({ min: 0, max: 4 }) }),
          ),
          { minLength: 4, maxLength: 24 },
        ),
        async (cmds) => {
          await h.redis.flushdb();
          let now = Date.now();
          const position = new Map<string, number>(SYMBOLS.map((s) => [s, 0]));
          const snapshot = async (sym: string) => {
            const amt = String(position.get(sym));
            await h.redis.hset(keys.snapshot(sym), { position_amt: amt, side: amt === '0' ? 'FLAT' : 'LONG', mark_price: '1000', ts_ms: String(Date.now()), ts_epoch: String(Date.now() / 1000) });
          };
          for (const s of SYMBOLS) await snapshot(s);
          const allowed = new Set<number>();
          const sent = new Set<number>();
          const filled = new Set<number>();
          for (const c of cmds) {
            const id = `lim-${'plan' in c ? c.plan : 0}`;
            if (c.kind === 'time') now += c.ms;
            if (c.kind === 'decide' && !allowed.has(c.plan)) {
              const sym = symbolOf(c.plan);
              const v = await reserveExposure(h.redis, { planId: id, symbol: sym, qty: QTY, mark: MARK, position: new Decimal(position.get(sym)!), ttlMs: PERMIT_TTL_MS }, SYMBOLS, limits, now);
              if (v.ok) allowed.add(c.plan);
            }
            if (c.kind === 'send' && allowed.has(c.plan) && !sent.has(c.plan)) {
              const sym = symbolOf(c.plan);
              const claim = await claimPlan(h.redis, id, '1-0', 'tok');
              if (!claim.claimed) continue;
              const rec: OrderRecord = { plan_id: id, entry_id: '1-0', symbol: sym, side: 'BUY', qty: '9', reduce_only: 'false', decision: 'EXECUTE', dedupe: dedupeValue('sending', '1-0', 'tok'), ts_ms: String(Date.now()) };
              const r = await beginSend(h.redis, `cid-${id}`, rec, claim.value, 60, undefined, Date.now(), 'execute', null, true);
              if (r === 'sending') sent.add(c.plan);
              else await h.redis.set(keys.applyDedupe(id), dedupeValue('done', '1-0', 'SKIPPED'), 'KEEPTTL');
            }
            if (c.kind === 'fill' && sent.has(c.plan) && !filled.has(c.plan)) {
              const sym = symbolOf(c.plan);
              position.set(sym, position.get(sym)! + 9);
              await h.redis.multi().set(keys.applyDedupe(id), dedupeValue('done', '1-0', 'EXECUTED'), 'KEEPTTL').set(keys.lastFill(sym), String(Date.now())).hdel(keys.applyInflight(sym), `cid-${id}`).exec();
              await new Promise((r) => setTimeout(r, 2));
              await snapshot(sym);
              filled.add(c.plan);
            }
            // the exchange's exposure if every order sent so far fills: per symbol <= 10k, gross <= 20k
            const bySym = new Map<string, number>();
            for (const p of sent) bySym.set(symbolOf(p), (bySym.get(symbolOf(p)) ?? 0) + 9_000);
            for (const v of bySym.values()) expect(v).toBeLessThanOrEqual(10_000);
            expect([...bySym.values()].reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(20_000);
          }
        },
      ),
      { numRuns: 400 },
    );
  }, 120_000);

  it('the review case: a permit read at 58 s, sent at 62 s; a second decision at 60.5 s must still count the first entry', async () => {
    let now = Date.now();
    for (const s of SYMBOLS) await h.redis.hset(keys.snapshot(s), { position_amt: '0', side: 'FLAT', mark_price: '1000', ts_ms: String(Date.now()) });
    const a = await reserveExposure(h.redis, { planId: 'a', symbol: 'AAAUSDT', qty: QTY, mark: MARK, position: new Decimal(0), ttlMs: PERMIT_TTL_MS }, SYMBOLS, LIMITS, now);
    expect(a.ok).toBe(true);
    const claim = await claimPlan(h.redis, 'a', '1-0', 'tok');
    if (!claim.claimed) throw new Error('not claimed');
    now += 58_000; // the apply layer reads the permits, then waits in a queue
    now += 2_500; // 60.5 s: a second entry is decided
    const b = await reserveExposure(h.redis, { planId: 'b', symbol: 'BBBUSDT', qty: QTY, mark: MARK, position: new Decimal(0), ttlMs: PERMIT_TTL_MS }, SYMBOLS, LIMITS, now);
    const rec: OrderRecord = { plan_id: 'a', entry_id: '1-0', symbol: 'AAAUSDT', side: 'BUY', qty: '9', reduce_only: 'false', decision: 'EXECUTE', dedupe: dedupeValue('sending', '1-0', 'tok'), ts_ms: String(Date.now()) };
    const sentA = (await beginSend(h.redis, 'cid-a', rec, claim.value, 60, undefined, Date.now(), 'execute', null, true)) === 'sending';
    // either the first entry is not sent (its reservation went with its permit) or the second is denied
    expect(sentA && b.ok).toBe(false);
    expect(sentA || b.ok).toBe(true);
  });
});
