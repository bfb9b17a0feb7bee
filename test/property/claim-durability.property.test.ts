/**
 * Properties of the pre-send query's shortcut (src/services/apply-layer/claim/durability.ts, docs/architecture.md#claim-durability): a "not found" answer of the exchange is taken as "never sent" only when no request of the plan signed
 * before Redis lost writes can still reach the exchange. Model: Redis lost writes at `loss` (the dataset epoch
 * `since` is never earlier than the loss); the plan was created at `created` on the producer's host, whose
 * clock is off by at most PRODUCER_CLOCK_SKEW_MS (the plan's `ts_ms` = created + skew); a request signed
 * before the loss is refused by the exchange once `settle` ms have passed since it (recvWindow).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createdAfterEpoch, notFoundIsFinal, PRODUCER_CLOCK_SKEW_MS } from '../../src/services/apply-layer/claim/durability.js';
import { params } from './runs.js';

const T0 = 1_800_000_000_000;
const world = fc
  .record({
    loss: fc.integer({ min: 0, max: 600_000 }),
    epochLag: fc.integer({ min: 0, max: 60_000 }), // since - loss: the epoch is seen at or after the loss
    createdOffset: fc.integer({ min: -600_000, max: 600_000 }), // created - loss
    skew: fc.integer({ min: -PRODUCER_CLOCK_SKEW_MS, max: PRODUCER_CLOCK_SKEW_MS }),
    settle: fc.integer({ min: 1000, max: 60_000 }),
    nowAfterLoss: fc.integer({ min: 0, max: 120_000 }),
  })
  .map((w) => {
    const loss = T0 + w.loss;
    const created = loss + w.createdOffset;
    const now = Math.max(loss + w.nowAfterLoss, created); // the plan exists when it is handled
    return { loss, since: loss + w.epochLag, created, tsMs: created + w.skew, settle: w.settle, now };
  });

describe('claim durability: when "not found" may be trusted', () => {
  it('never final for a plan created before the loss while a request signed before it can still be accepted', () => {
    fc.assert(
      fc.property(world, (w) => {
        if (w.created < w.loss && w.now - w.loss < w.settle) {
          expect(notFoundIsFinal(w.tsMs, w.since, w.now, w.settle)).toBe(false);
          expect(createdAfterEpoch(w.tsMs, w.since, w.now)).toBe(false);
        }
      }),
      params(5000),
    );
  });

  it('once final, stays final as time passes (no flapping between "send" and "wait")', () => {
    fc.assert(
      fc.property(world, fc.integer({ min: 0, max: 600_000 }), (w, later) => {
        if (notFoundIsFinal(w.tsMs, w.since, w.now, w.settle)) expect(notFoundIsFinal(w.tsMs, w.since, w.now + later, w.settle)).toBe(true);
      }),
      params(3000),
    );
  });

  it('a plan without a creation time (closes, flattens) is never shortcut: final only after the settle', () => {
    fc.assert(
      fc.property(world, (w) => {
        expect(createdAfterEpoch(null, w.since, w.now)).toBe(false);
        expect(notFoundIsFinal(null, w.since, w.now, w.settle)).toBe(w.now - w.since >= w.settle);
      }),
      params(2000),
    );
  });

  it('a plan dated in the future beyond the skew is never shortcut', () => {
    fc.assert(
      fc.property(world, fc.integer({ min: 1, max: 3_600_000 }), (w, ahead) => {
        expect(createdAfterEpoch(w.now + PRODUCER_CLOCK_SKEW_MS + ahead, w.since, w.now)).toBe(false);
      }),
      params(2000),
    );
  });
});
