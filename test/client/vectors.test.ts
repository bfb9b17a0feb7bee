/**
 * The wire-format test vectors (docs/plan-format-vectors.json, described in docs/plan-format.md#test-vectors):
 * each plan signed by the TypeScript code gives exactly the vector's canonical string, MAC and digest, and
 * verifies as a stream entry with the vector key (and not with another key, nor with one byte changed); each
 * permit's signing string and signature match and verify for its binding.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { planDigest, signPlan, verifyPlanEntry, type PlanInput } from '../../src/domain/plan.js';
import { permitSigningString, verifyPermit } from '../../src/domain/permit-signature.js';
import { fromRoot } from '../../src/lib/root.js';

interface Vectors {
  version: number;
  key: string;
  plans: Array<{ name: string; plan: PlanInput; canonical: string; mac: string; plan_digest: string }>;
  permits: Array<{ name: string; issuer: 'governor' | 'p33'; key: string; binding: { plan_id: string; entry_id: string; plan_digest: string }; fields: Record<string, string>; signing_string: string; sig: string }>;
}

const V = JSON.parse(readFileSync(fromRoot('docs/plan-format-vectors.json'), 'utf8')) as Vectors;

describe('plan-format test vectors (TypeScript)', () => {
  it('has the version 1 vectors', () => {
    expect(V.version).toBe(1);
    expect(V.plans.length).toBeGreaterThanOrEqual(6);
    expect(V.permits.length).toBe(2);
  });

  for (const v of V.plans) {
    it(`plan: ${v.name}`, () => {
      const s = signPlan(v.plan, V.key);
      expect(s.plan).toBe(v.canonical);
      expect(s.mac).toBe(v.mac);
      expect(planDigest(s.plan)).toBe(v.plan_digest);
      const keyFor = (k: string) => () => k;
      expect(verifyPlanEntry({ plan: v.canonical, mac: v.mac }, keyFor(V.key)).ok).toBe(true);
      expect(verifyPlanEntry({ plan: v.canonical, mac: v.mac }, keyFor(`${V.key}x`))).toMatchObject({ ok: false, reason: 'bad_mac' });
      expect(verifyPlanEntry({ plan: `${v.canonical} `, mac: v.mac }, keyFor(V.key))).toMatchObject({ ok: false, reason: 'bad_mac' });
    });
  }

  for (const v of V.permits) {
    it(`permit: ${v.name}`, () => {
      const binding = { planId: v.binding.plan_id, entryId: v.binding.entry_id, planDigest: v.binding.plan_digest };
      const hash = { ...v.fields, plan_digest: v.binding.plan_digest, sig: v.sig };
      expect(permitSigningString(v.issuer, binding, hash)).toBe(v.signing_string);
      expect(verifyPermit(v.issuer, v.key, binding, hash)).toEqual({ ok: true });
      expect(verifyPermit(v.issuer, v.key, { ...binding, entryId: '1-0' }, hash)).toMatchObject({ ok: false });
    });
  }
});

describe('the ccxt error mapping', () => {
  it('maps every DENY reason of both permit issuers to a specific ccxt error (none falls through to ExchangeError)', async () => {
    const { CCXT_ERROR_MAPPING } = await import('../../src/client/ccxt-facade.js');
    const { GOVERNOR_DENY_REASONS } = await import('../../src/domain/governor.js');
    const { P33_DENY_REASONS } = await import('../../src/domain/permits.js');
    const mapped = new Set(CCXT_ERROR_MAPPING.flatMap((m) => m.reasons));
    expect([...GOVERNOR_DENY_REASONS, ...P33_DENY_REASONS].filter((r) => !mapped.has(r))).toEqual([]);
    // one class per reason
    const all = CCXT_ERROR_MAPPING.flatMap((m) => m.reasons);
    expect(all.length).toBe(mapped.size);
  });
});
