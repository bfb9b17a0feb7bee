/**
 * The client's pure rules, property-tested:
 * - the producer contract (src/client/producer.ts `producerAction`): a plan with a final result is never
 *   re-submitted before its read-back; an acknowledged plan is never re-submitted while Redis's run_id is
 *   unchanged; a possibly lost plan is re-submitted only after its back-off; nothing after `keepMs`;
 * - results (src/client/result.ts): `DROPPED_DUPLICATE` is never final; nothing is EXECUTED without
 *   `executed=true`, a positive filled quantity and a side; the apply layer's DENY text
 *   (src/domain/apply.ts `permitDecisions`) reads back as both permits' decisions.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DEFAULT_TIMING, producerAction, runIdOf, type ProducedPlan } from '../../src/client/producer.js';
import { parsePermitDecisions, toP3Result } from '../../src/client/result.js';
import { permitDecisions } from '../../src/domain/apply.js';

const T = DEFAULT_TIMING;
const arbPlan = fc.record({
  firstAgo: fc.integer({ min: 0, max: 200_000 }),
  lastAgo: fc.integer({ min: 0, max: 200_000 }),
  acked: fc.boolean(),
  resubmits: fc.integer({ min: 0, max: 20 }),
  epoch: fc.constantFrom('a', 'b', null),
  final: fc.option(fc.integer({ min: 0, max: 20_000 }), { nil: null }),
  durable: fc.boolean(),
});

type PlanArb = { firstAgo: number; lastAgo: number; acked: boolean; resubmits: number; epoch: string | null; final: number | null; durable: boolean };

function planOf(now: number, a: PlanArb): ProducedPlan {
  const first = now - Math.max(a.firstAgo, a.lastAgo);
  const result = toP3Result('1-0', { plan_id: 'p', symbol: 'BTCUSDT', status: 'SKIPPED', reason: 'stale_plan', ts_ms: '1' })!;
  return { planId: 'p', symbol: 'BTCUSDT', signed: { plan: '{}', mac: '0'.repeat(64) }, firstSubmitMs: first, lastSubmitMs: now - a.lastAgo, submitEpoch: a.epoch, acked: a.acked, resubmits: a.resubmits, entryIds: [], final: a.final === null ? null : { result, seenMs: now - a.final }, durable: a.durable };
}

describe('producer contract (producerAction)', () => {
  it('never re-submits a plan with a final result, an acknowledged plan under the same run_id, or before its back-off; drops after keepMs', () => {
    fc.assert(
      fc.property(arbPlan, fc.constantFrom('a', 'b', null), (a, epoch) => {
        const now = 1_800_000_000_000;
        const p = planOf(now, a);
        const act = producerAction(p, now, epoch, T);
        if (p.durable || now - p.firstSubmitMs > T.keepMs) return act === 'drop';
        if (p.final) return act === (now - p.final.seenMs >= T.durableAfterMs ? 'check_durable' : 'none');
        if (act === 'resubmit') {
          const mayBeLost = !p.acked || p.submitEpoch === null || p.submitEpoch !== epoch;
          const gap = Math.min(T.resubmitMaxMs, T.resubmitAfterMs * 2 ** Math.min(p.resubmits, 6));
          return mayBeLost && now - p.lastSubmitMs >= gap && now - p.lastSubmitMs >= T.resubmitAfterMs;
        }
        return act === 'none';
      }),
      { numRuns: 2000 },
    );
  });

  it('an acknowledged plan with no final result and the same run_id is never re-submitted, however long it waits (within keepMs)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: T.keepMs }), fc.integer({ min: 0, max: 30 }), (ago, resubmits) => {
        const now = 1_800_000_000_000;
        const p = planOf(now, { firstAgo: ago, lastAgo: ago, acked: true, resubmits, epoch: 'a', final: null, durable: false });
        return producerAction(p, now, 'a', T) === 'none';
      }),
    );
  });

  it('reads run_id from INFO server', () => {
    expect(runIdOf('# Server\r\nredis_version:7.0.15\r\nrun_id:abc123def\r\ntcp_port:6379\r\n')).toBe('abc123def');
    expect(runIdOf('# Server\r\n')).toBeNull();
  });
});

describe('results (toP3Result)', () => {
  const STATUSES = ['EXECUTED', 'SKIPPED', 'DROPPED_DUPLICATE', 'REJECTED_INVALID', 'REJECTED_GUARDRAIL', 'RETRYABLE_RATE_LIMIT', 'FAILED', 'BOGUS', ''];
  it('DROPPED_DUPLICATE is never final; EXECUTED only with executed=true, filled > 0 and a side', () => {
    fc.assert(
      fc.property(
        fc.record({
          status: fc.constantFrom(...STATUSES),
          executed: fc.constantFrom('true', 'false', ''),
          filled_qty: fc.constantFrom('0', '0.002', '-1', 'abc', '', '1e3', '0.000'),
          side: fc.constantFrom('BUY', 'SELL', 'buy', '', 'X'),
          error: fc.constantFrom('', 'governor DENY max_position_exceeded; p33 PENDING', 'governor ALLOW ok; p33 ALLOW ok', 'x'),
        }),
        (f) => {
          const r = toP3Result('1-0', { plan_id: 'p', symbol: 'BTCUSDT', ts_ms: '1', ...f });
          if (f.status === 'DROPPED_DUPLICATE' || f.status === '') return r === null;
          if (r === null) return false;
          if (r.status === 'EXECUTED') return f.status === 'EXECUTED' && f.executed === 'true' && Number(f.filled_qty) > 0 && /^(BUY|SELL)$/i.test(f.side); // the side read as fillFromResult reads it (src/domain/result.ts)
          if (r.status === 'DENY') return f.status === 'SKIPPED' && f.error.includes('DENY');
          return true;
        },
      ),
      { numRuns: 2000 },
    );
  });

  it("the apply layer's DENY text reads back as both permits' decisions", () => {
    const permit = fc.option(fc.record({ decision: fc.constantFrom('ALLOW', 'DENY', 'allow', 'maybe'), reason: fc.constantFrom('ok', 'max_position_exceeded', 'position_not_flat', '', 'Bad Reason!') }), { nil: null });
    fc.assert(
      fc.property(permit, permit, (g, p) => {
        const gov: Record<string, string> = g ?? {};
        const p33: Record<string, string> = p ?? {};
        const text = permitDecisions(gov, p33);
        const parsed = parsePermitDecisions(text);
        const denied = [gov, p33].some((h) => (h.decision ?? '').toUpperCase() === 'DENY');
        if (!denied) return parsed === null;
        const want = (h: Record<string, string>) => (Object.keys(h).length === 0 ? { decision: 'PENDING', reason: '' } : { decision: ['ALLOW', 'DENY'].includes(h.decision!.toUpperCase()) ? h.decision!.toUpperCase() : 'INVALID', reason: /^[a-z0-9_]{1,64}$/.test(h.reason ?? '') ? h.reason : '' });
        expect(parsed).toEqual({ governor: want(gov), p33: want(p33) });
        return true;
      }),
      { numRuns: 1000 },
    );
  });
});
