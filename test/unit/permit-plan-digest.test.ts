/**
 * A permit authorises one plan payload: signed for entry E of plan P with payload X, it does not verify for
 * a different payload X' under the same plan id and entry id. Pure (fast-check over generated plans).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkPermitSignatures, planDigest, signPermit, verifyPermit } from '../../src/domain/permit-signature.js';
import { signPlan, type PlanInput } from '../../src/domain/plan.js';

const KEYS = { governor: 'governor-key-0123456789abcdef', p33: 'p33-key-0123456789abcdef' };
const STRATEGY_KEY = 'exit-brain-key';

const decimal = fc.tuple(fc.integer({ min: 1, max: 10_000 }), fc.integer({ min: 0, max: 999 })).map(([i, f]) => `${i}.${String(f).padStart(3, '0')}`);
/** Valid EXECUTE exit and entry plans (every field the schema knows, some optional ones absent). */
const plan: fc.Arbitrary<PlanInput> = fc.record({
  plan_id: fc.stringMatching(/^[A-Za-z0-9:._-]{1,64}$/),
  symbol: fc.constantFrom('BTCUSDT', 'ETHUSDT', 'SOLUSDT'),
  decision: fc.constant('EXECUTE' as const),
  action: fc.constantFrom('FULL_CLOSE', 'PARTIAL_75', 'PARTIAL_50', 'PARTIAL_25', 'REDUCE'),
  side: fc.constantFrom('BUY' as const, 'SELL' as const),
  qty: decimal,
  type: fc.constant('MARKET'),
  reduceOnly: fc.constant(true),
  reason: fc.string({ maxLength: 40 }),
  source: fc.constantFrom('exit_brain', 'strategy'),
  kill_score: fc.double({ min: 0, max: 1, noNaN: true }),
  ts_ms: fc.integer({ min: 0, max: 4_000_000_000_000 }),
});
/** A different value for one field of a plan (the plan stays valid, so it would pass the plan checks). */
const change: fc.Arbitrary<[keyof PlanInput, unknown]> = fc.oneof(
  fc.tuple(fc.constant('qty' as const), decimal),
  fc.tuple(fc.constant('action' as const), fc.constantFrom('FULL_CLOSE', 'PARTIAL_75', 'PARTIAL_50', 'PARTIAL_25', 'REDUCE')),
  fc.tuple(fc.constant('symbol' as const), fc.constantFrom('BTCUSDT', 'ETHUSDT', 'SOLUSDT')),
  fc.tuple(fc.constant('side' as const), fc.constantFrom('BUY', 'SELL')),
  fc.tuple(fc.constant('reason' as const), fc.string({ maxLength: 40 })),
  fc.tuple(fc.constant('kill_score' as const), fc.double({ min: 0, max: 1, noNaN: true })),
  fc.tuple(fc.constant('ts_ms' as const), fc.integer({ min: 0, max: 4_000_000_000_000 })),
  fc.tuple(fc.constant('source' as const), fc.constantFrom('exit_brain', 'strategy')),
);
const entryId = fc.tuple(fc.nat(), fc.nat({ max: 99 })).map(([ms, seq]) => `${ms}-${seq}`);
const issuer = fc.constantFrom('governor' as const, 'p33' as const);

/** A permit as an issuer writes it for entry `eid` of the plan whose stream `plan` string is `x`. */
function permitFor(iss: 'governor' | 'p33', planId: string, eid: string, x: string): Record<string, string> {
  return signPermit(iss, KEYS[iss], { planId, entryId: eid, planDigest: planDigest(x) }, { decision: 'ALLOW', reason: 'ok', plan_id: planId, entry_id: eid, qty: '0.001', side: 'SELL' });
}

describe('permits bind the plan payload', () => {
  it('planDigest is the hex SHA-256 of the exact plan string', () => {
    expect(planDigest('')).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    expect(planDigest('{"a":1}')).not.toBe(planDigest('{"a": 1}'));
  });

  it('a permit for payload X of entry E of plan P is refused for a payload X\u2032 with one field changed (same plan id, same entry id)', () => {
    fc.assert(
      fc.property(plan, change, entryId, issuer, (p, [k, v], eid, iss) => {
        const x = signPlan(p, STRATEGY_KEY).plan;
        const x2 = signPlan({ ...p, [k]: v } as PlanInput, STRATEGY_KEY).plan;
        fc.pre(x2 !== x);
        const permit = permitFor(iss, p.plan_id, eid, x);
        const other = { governor: {}, p33: {}, [iss]: permit };
        expect(verifyPermit(iss, KEYS[iss], { planId: p.plan_id, entryId: eid, planDigest: planDigest(x2) }, permit).ok).toBe(false);
        expect(checkPermitSignatures(KEYS, { planId: p.plan_id, entryId: eid, planDigest: planDigest(x2) }, other)).toEqual({ issuer: iss, problem: 'other_payload' });
        // the same payload verifies
        expect(checkPermitSignatures(KEYS, { planId: p.plan_id, entryId: eid, planDigest: planDigest(x) }, other)).toBeNull();
      }),
      { numRuns: 300 },
    );
  });

  it('the same content re-serialised (another key order) is another payload: the digest is over the exact signed string', () => {
    const p: PlanInput = { plan_id: 'p1', symbol: 'BTCUSDT', decision: 'EXECUTE', action: 'FULL_CLOSE', source: 'exit_brain', ts_ms: 1 };
    const x = signPlan(p, STRATEGY_KEY).plan;
    const reordered = JSON.stringify(Object.fromEntries(Object.entries(JSON.parse(x) as Record<string, unknown>).reverse()));
    expect(reordered).not.toBe(x);
    const permit = permitFor('governor', 'p1', '1-0', x);
    expect(checkPermitSignatures(KEYS, { planId: 'p1', entryId: '1-0', planDigest: planDigest(reordered) }, { governor: permit, p33: {} })).toEqual({ issuer: 'governor', problem: 'other_payload' });
  });
});
