/**
 * Signed permits, pure: a permit verifies only for its issuer's key, its plan id, its
 * stream entry id and the digest of its plan payload, with exactly the fields that were signed.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkPermitSignatures, permitSigningString, signPermit, verifyPermit } from '../../src/domain/permit-signature.js';
import { envKeyLookup, planDigest, signPlan } from '../../src/domain/plan.js';

const KEY = 'governor-key-0123456789abcdef';
const field = fc.string({ minLength: 1, maxLength: 12 }).filter((k) => k !== 'sig');
const fields = fc.dictionary(field, fc.string({ maxLength: 40 }), { minKeys: 1, maxKeys: 12 });
const planId = fc.stringMatching(/^[A-Za-z0-9:._-]{1,64}$/);
const entryId = fc.tuple(fc.nat(), fc.nat({ max: 99 })).map(([ms, seq]) => `${ms}-${seq}`);
const issuer = fc.constantFrom('governor' as const, 'p33' as const);
const digest = fc.string({ maxLength: 60 }).map(planDigest);
/** The binding of plan `planId`, entry `entryId`, payload digest `planDigest` (default: of the payload `{}`). */
const b = (planId: string, entryId: string, d = planDigest('{}')) => ({ planId, entryId, planDigest: d });

describe('permit signature', () => {
  it('a signed permit verifies for its issuer, plan and entry', () => {
    fc.assert(
      fc.property(issuer, planId, entryId, digest, fields, (iss, pid, eid, d, f) => {
        const signed = signPermit(iss, KEY, b(pid, eid, d), f);
        expect(signed.plan_digest).toBe(d);
        expect(verifyPermit(iss, KEY, b(pid, eid, d), signed)).toEqual({ ok: true });
      }),
    );
  });

  it('any changed, added or removed field fails', () => {
    fc.assert(
      fc.property(issuer, planId, entryId, fields, field, fc.string({ maxLength: 40 }), (iss, pid, eid, f, k, v) => {
        const signed: Record<string, string> = signPermit(iss, KEY, b(pid, eid), f);
        const changed = { ...signed, [k]: v };
        fc.pre(signed[k] !== v);
        expect(verifyPermit(iss, KEY, b(pid, eid), changed).ok).toBe(false);
        const [first] = Object.keys(f);
        const removed = { ...signed };
        delete removed[first!];
        expect(verifyPermit(iss, KEY, b(pid, eid), removed).ok).toBe(false);
      }),
    );
  });

  it('a field named __proto__ is signed like any other (found by the property above: seed -1426591485)', () => {
    const bind = b('.', '0-0');
    const signed: Record<string, string> = signPermit('governor', KEY, bind, { ' ': '' });
    expect(verifyPermit('governor', KEY, bind, { ...signed, ['__proto__']: '' }).ok).toBe(false);
    expect(verifyPermit('governor', KEY, bind, signed).ok).toBe(true);
  });

  it('another plan id, entry id, issuer or key fails', () => {
    fc.assert(
      fc.property(issuer, planId, planId, entryId, entryId, fields, (iss, pid, pid2, eid, eid2, f) => {
        const signed = signPermit(iss, KEY, b(pid, eid), f);
        if (pid2 !== pid) expect(verifyPermit(iss, KEY, b(pid2, eid), signed).ok).toBe(false);
        if (eid2 !== eid) expect(verifyPermit(iss, KEY, b(pid, eid2), signed).ok).toBe(false);
        expect(verifyPermit(iss, KEY, b(pid, eid, planDigest('{"x":1}')), signed).ok).toBe(false);
        expect(verifyPermit(iss === 'governor' ? 'p33' : 'governor', KEY, b(pid, eid), signed).ok).toBe(false);
        expect(verifyPermit(iss, `${KEY}x`, b(pid, eid), signed).ok).toBe(false);
      }),
    );
  });

  it('unsigned and malformed signatures are refused with their reason', () => {
    const f = { decision: 'ALLOW', reason: 'ok', plan_id: 'p1', symbol: 'BTCUSDT', qty: '0.001', side: 'SELL' };
    const d = { plan_digest: planDigest('{}') };
    expect(verifyPermit('governor', KEY, b('p1', '1-0'), f)).toEqual({ ok: false, problem: 'unsigned' });
    expect(verifyPermit('governor', KEY, b('p1', '1-0'), { ...f, ...d, sig: 'zz' })).toEqual({ ok: false, problem: 'malformed_sig' });
    expect(verifyPermit('governor', KEY, b('p1', '1-0'), { ...f, ...d, sig: '0'.repeat(64) })).toEqual({ ok: false, problem: 'bad_sig' });
    expect(() => signPermit('p33', '', b('p1', '1-0'), f)).toThrow(/P3_KEY_P33/);
    // a permit must bind a payload: no digest (or not a SHA-256 hex) is never signed, and never verifies
    expect(() => signPermit('p33', KEY, b('p1', '1-0', ''), f)).toThrow(/plan digest/);
    expect(() => signPermit('p33', KEY, b('p1', '1-0', 'A'.repeat(64)), f)).toThrow(/plan digest/);
    const { plan_digest: _d, ...noDigest } = signPermit('governor', KEY, b('p1', '1-0'), f);
    void _d;
    expect(verifyPermit('governor', KEY, b('p1', '1-0'), noDigest)).toEqual({ ok: false, problem: 'no_plan_digest' });
    expect(verifyPermit('governor', KEY, b('p1', '1-0'), { ...noDigest, plan_digest: '' })).toEqual({ ok: false, problem: 'no_plan_digest' });
  });

  it('checkPermitSignatures: absent permits wait, the first bad one is named', () => {
    const keys = { governor: KEY, p33: 'p33-key-0123456789' };
    const g = signPermit('governor', keys.governor, b('p1', '1-0'), { decision: 'ALLOW' });
    const p = signPermit('p33', keys.p33, b('p1', '1-0'), { decision: 'ALLOW' });
    expect(checkPermitSignatures(keys, b('p1', '1-0'), { governor: g, p33: {} })).toBeNull();
    expect(checkPermitSignatures(keys, b('p1', '1-0'), { governor: g, p33: p })).toBeNull();
    expect(checkPermitSignatures(keys, b('p1', '1-0'), { governor: { ...p }, p33: p })).toEqual({ issuer: 'governor', problem: 'bad_sig' });
    expect(checkPermitSignatures(keys, b('p2', '1-0'), { governor: g, p33: p })).toEqual({ issuer: 'governor', problem: 'bad_sig' });
    // a genuine permit of another entry of the same plan (submitted twice) is named as such, not as a forgery
    const g2 = signPermit('governor', keys.governor, b('p1', '2-0', planDigest('other')), { decision: 'ALLOW', entry_id: '2-0' });
    expect(checkPermitSignatures(keys, b('p1', '1-0'), { governor: g2, p33: p })).toEqual({ issuer: 'governor', problem: 'other_entry' });
    expect(checkPermitSignatures(keys, b('p1', '1-0'), { governor: { ...g2, entry_id: '1-0' }, p33: p })).toEqual({ issuer: 'governor', problem: 'bad_sig' });
    // a genuine permit of this entry decided for another payload is named as such; a rewritten digest is a forgery
    const p3 = signPermit('p33', keys.p33, b('p1', '1-0', planDigest('X')), { decision: 'ALLOW', entry_id: '1-0' });
    expect(checkPermitSignatures(keys, b('p1', '1-0', planDigest('X')), { governor: {}, p33: p3 })).toBeNull();
    expect(checkPermitSignatures(keys, b('p1', '1-0', planDigest("X'")), { governor: {}, p33: p3 })).toEqual({ issuer: 'p33', problem: 'other_payload' });
    expect(checkPermitSignatures(keys, b('p1', '1-0', planDigest("X'")), { governor: {}, p33: { ...p3, plan_digest: planDigest("X'") } })).toEqual({ issuer: 'p33', problem: 'bad_sig' });
  });

  it('the signed string is never JSON, and permit keys never verify plans', () => {
    expect(() => JSON.parse(permitSigningString('governor', b('p', '1-0'), {}))).toThrow();
    expect(permitSigningString('governor', b('p', '1-0'), {}).startsWith('p3-permit-v2\n')).toBe(true);
    const signed = signPlan({ plan_id: 'p1', symbol: 'BTCUSDT', decision: 'EXECUTE', action: 'FULL_CLOSE', source: 'governor', ts_ms: 1 }, KEY);
    expect(signed.mac).toMatch(/^[0-9a-f]{64}$/);
    expect(envKeyLookup({ P3_KEY_GOVERNOR: KEY, P3_KEY_P33: KEY })('governor')).toBeUndefined();
    expect(envKeyLookup({ P3_KEY_GOVERNOR: KEY, P3_KEY_P33: KEY })('p33')).toBeUndefined();
  });
});
