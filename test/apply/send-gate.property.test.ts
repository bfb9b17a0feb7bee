/**
 * The send-time gate over generated interleavings (fast-check):
 * - the pure model (test/models/send-gate-model.ts): with the gate, no order ever executes against a
 *   position that changed since the snapshot it was sized on, and no exit exceeds the position (-2022);
 *   without it, fast-check finds an interleaving that breaks both (the property can fail);
 * - parity: applyBegin-13.lua, the script the apply layer really runs, decides exactly as `sendGate`
 *   for generated in-flight sets, last fills and snapshot times, against a real Redis.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { keys } from '../../src/adapters/redis/keys.js';
import { runSendGateModel, type ModelEvent } from '../models/send-gate-model.js';
import { sendGate } from '../../src/domain/send-gate.js';
import { dedupeValue } from '../../src/domain/apply.js';
import { beginSend, type OrderRecord } from '../../src/services/apply-layer/store.js';
import { useTestRedis } from '../helpers/redis.js';

const idx = fc.nat({ max: 7 });
const event: fc.Arbitrary<ModelEvent> = fc.oneof(
  { weight: 3, arbitrary: fc.constant({ kind: 'tick' } as const) },
  { weight: 2, arbitrary: fc.constant({ kind: 'snapStart' } as const) },
  { weight: 2, arbitrary: idx.map((i) => ({ kind: 'snapObserve', i }) as const) },
  { weight: 2, arbitrary: idx.map((i) => ({ kind: 'snapLand', i }) as const) },
  { weight: 3, arbitrary: fc.constantFrom(0.25, 0.5, 0.75, 1).map((fraction) => ({ kind: 'permit', fraction }) as ModelEvent) },
  { weight: 3, arbitrary: idx.map((i) => ({ kind: 'send', i }) as const) },
  { weight: 3, arbitrary: idx.map((i) => ({ kind: 'fill', i }) as const) },
  { weight: 1, arbitrary: idx.map((i) => ({ kind: 'reject', i }) as const) },
  { weight: 3, arbitrary: idx.map((i) => ({ kind: 'record', i }) as const) },
);
const runs = fc.array(event, { minLength: 1, maxLength: 80 });
const startLots = fc.integer({ min: 1, max: 5000 });

describe('send-time gate: generated permit/send interleavings (pure model)', () => {
  it('with the gate: every order executes against the position it was sized on, and never exceeds it', () => {
    fc.assert(
      fc.property(runs, startLots, (events, lots) => {
        const r = runSendGateModel(events, lots);
        expect(r.violations).toEqual([]);
        expect(r.position).toBeGreaterThanOrEqual(0);
      }),
      { numRuns: 3000 },
    );
  });

  it('without the gate the same generator finds both violations (the property can fail)', () => {
    const noGate = () => ({ ok: true }) as const;
    for (const kind of ['sized_on_changed_position', 'exceeds_position'] as const) {
      const out = fc.check(
        fc.property(runs, startLots, (events, lots) => !runSendGateModel(events, lots, noGate).violations.some((v) => v.kind === kind)),
        { numRuns: 3000, seed: 13 },
      );
      expect(out.failed).toBe(true);
    }
  });

  it('the racing-exits case (docs/architecture.md#send-time-gate): two PARTIAL_50 sized on one snapshot of 5 give one order; the position ends 2.5, not 0', () => {
    // 5 with a lot step of 0.001 = 5000 lots
    const seq: ModelEvent[] = [{ kind: 'permit', fraction: 0.5 }, { kind: 'permit', fraction: 0.5 }, { kind: 'send', i: 0 }, { kind: 'fill', i: 0 }, { kind: 'tick' }, { kind: 'record', i: 0 }, { kind: 'send', i: 0 }, { kind: 'fill', i: 0 }];
    expect(runSendGateModel(seq, 5000)).toMatchObject({ violations: [], sent: 1, refused: 1, position: 2500 });
    expect(runSendGateModel(seq, 5000, () => ({ ok: true })).position).toBe(0);
  });
});

describe('send-time gate: applyBegin-13.lua decides as sendGate (real Redis)', () => {
  const h = useTestRedis();
  it('generated in-flight sets, last fills and snapshot times', async () => {
    let n = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.uniqueArray(fc.constantFrom('c1', 'c2', 'c3', 'own'), { maxLength: 3 }),
        fc.option(fc.integer({ min: 1, max: 2_000_000_000_000 }), { nil: null }),
        fc.option(fc.integer({ min: 1, max: 2_000_000_000_000 }), { nil: null }),
        fc.boolean(),
        async (inflight, lastFill, snap, nearFill) => {
          const sym = `SYM${++n}USDT`;
          const planId = `parity-${n}`;
          // half the cases put the snapshot at or next to the fill time (the boundary)
          const snapshotTsMs = nearFill && lastFill !== null ? lastFill + ((n % 3) - 1) : snap;
          const cid = 'own';
          const claimed = dedupeValue('claimed', '1-0', 'tok');
          const m = h.redis.multi().set(keys.applyDedupe(planId), claimed);
          for (const c of inflight) m.hset(keys.applyInflight(sym), c, '1');
          if (lastFill !== null) m.set(keys.lastFill(sym), String(lastFill));
          await m.exec();
          const rec: OrderRecord = { plan_id: planId, entry_id: '1-0', symbol: sym, side: 'SELL', qty: '1', reduce_only: 'true', decision: 'EXECUTE', dedupe: dedupeValue('sending', '1-0', 'tok'), ts_ms: String(Date.now()) };
          const got = await beginSend(h.redis, cid, rec, claimed, 60, undefined, snapshotTsMs !== null && snapshotTsMs > 0 ? snapshotTsMs : null);
          const want = sendGate({ snapshotTsMs: snapshotTsMs !== null && snapshotTsMs > 0 ? snapshotTsMs : null, lastFillMs: lastFill, inflight, ownCid: cid, nowMs: Date.now() });
          expect(got).toBe(want.ok ? 'sending' : want.reason);
        },
      ),
      { numRuns: 300 },
    );
  });
});
