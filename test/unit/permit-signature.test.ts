/**
 * Signed permits (DESIGN §15), pure: a permit verifies only for its issuer's key, its plan id and its
 * stream entry id, with exactly the fields that were signed.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkPermitSignatures, permitSigningString, signPermit, verifyPermit } from '../../src/domain/permit-signature.js';
import { envKeyLookup, signPlan } from '../../src/domain/plan.js';

const KEY = 'governor-key-0123456789abcdef';
const field = fc.string({ minLength: 1, maxLength: 12 }).filter((k) => k !== 'sig');
const fields = fc.dictionary(field, fc.string({ maxLength: 40 }), { minKeys: 1, maxKeys: 12 });
const planId = fc.stringMatching(/^[A-Za-z0-9:._-]{1,64}$/);
const entryId = fc.tuple(fc.nat(), fc.nat({ max: 99 })).map(([ms, seq]) => `${ms}-${seq}`);
const issuer = fc.constantFrom('governor' as const, 'p33' as const);

describe('permit signature', () => {
  it('a signed permit verifies for its issuer, plan and entry', () => {
    fc.assert(
      fc.property(issuer, planId, entryId, fields, (iss, pid, eid, f) => {
        const signed = signPermit(iss, KEY, pid, eid, f);
        expect(verifyPermit(iss, KEY, pid, eid, signed)).toEqual({ ok: true });
      }),
    );
  });

  it('any changed, added or removed field fails', () => {
    fc.assert(
      fc.property(issuer, planId, entryId, fields, field, fc.string({ maxLength: 40 }), (iss, pid, eid, f, k, v) => {
        const signed: Record<string, string> = signPermit(iss, KEY, pid, eid, f);
        const changed = { ...signed, [k]: v };
        fc.pre(f[k] !== v);
        expect(verifyPermit(iss, KEY, pid, eid, changed).ok).toBe(false);
        const [first] = Object.keys(f);
        const removed = { ...signed };
        delete removed[first!];
        expect(verifyPermit(iss, KEY, pid, eid, removed).ok).toBe(false);
      }),
    );
  });

  it('another plan id, entry id, issuer or key fails', () => {
    fc.assert(
      fc.property(issuer, planId, planId, entryId, entryId, fields, (iss, pid, pid2, eid, eid2, f) => {
        const signed = signPermit(iss, KEY, pid, eid, f);
        if (pid2 !== pid) expect(verifyPermit(iss, KEY, pid2, eid, signed).ok).toBe(false);
        if (eid2 !== eid) expect(verifyPermit(iss, KEY, pid, eid2, signed).ok).toBe(false);
        expect(verifyPermit(iss === 'governor' ? 'p33' : 'governor', KEY, pid, eid, signed).ok).toBe(false);
        expect(verifyPermit(iss, `${KEY}x`, pid, eid, signed).ok).toBe(false);
      }),
    );
  });

  it('unsigned and malformed signatures are refused with their reason', () => {
    const f = { decision: 'ALLOW', reason: 'ok', plan_id: 'p1', symbol: 'BTCUSDT', qty: '0.001', side: 'SELL' };
    expect(verifyPermit('governor', KEY, 'p1', '1-0', f)).toEqual({ ok: false, problem: 'unsigned' });
    expect(verifyPermit('governor', KEY, 'p1', '1-0', { ...f, sig: 'zz' })).toEqual({ ok: false, problem: 'malformed_sig' });
    expect(verifyPermit('governor', KEY, 'p1', '1-0', { ...f, sig: '0'.repeat(64) })).toEqual({ ok: false, problem: 'bad_sig' });
    expect(() => signPermit('p33', '', 'p1', '1-0', f)).toThrow(/P3_KEY_P33/);
  });

  it('checkPermitSignatures: absent permits wait, the first bad one is named', () => {
    const keys = { governor: KEY, p33: 'p33-key-0123456789' };
    const g = signPermit('governor', keys.governor, 'p1', '1-0', { decision: 'ALLOW' });
    const p = signPermit('p33', keys.p33, 'p1', '1-0', { decision: 'ALLOW' });
    expect(checkPermitSignatures(keys, 'p1', '1-0', { governor: g, p33: {} })).toBeNull();
    expect(checkPermitSignatures(keys, 'p1', '1-0', { governor: g, p33: p })).toBeNull();
    expect(checkPermitSignatures(keys, 'p1', '1-0', { governor: { ...p }, p33: p })).toEqual({ issuer: 'governor', problem: 'bad_sig' });
    expect(checkPermitSignatures(keys, 'p2', '1-0', { governor: g, p33: p })).toEqual({ issuer: 'governor', problem: 'bad_sig' });
    // a genuine permit of another entry of the same plan (submitted twice) is named as such, not as a forgery
    const g2 = signPermit('governor', keys.governor, 'p1', '2-0', { decision: 'ALLOW', entry_id: '2-0' });
    expect(checkPermitSignatures(keys, 'p1', '1-0', { governor: g2, p33: p })).toEqual({ issuer: 'governor', problem: 'other_entry' });
    expect(checkPermitSignatures(keys, 'p1', '1-0', { governor: { ...g2, entry_id: '1-0' }, p33: p })).toEqual({ issuer: 'governor', problem: 'bad_sig' });
  });

  it('the signed string is never JSON, and permit keys never verify plans', () => {
    expect(() => JSON.parse(permitSigningString('governor', 'p', '1-0', {}))).toThrow();
    const signed = signPlan({ plan_id: 'p1', symbol: 'BTCUSDT', decision: 'EXECUTE', action: 'FULL_CLOSE', source: 'governor', ts_ms: 1 }, KEY);
    expect(signed.mac).toMatch(/^[0-9a-f]{64}$/);
    expect(envKeyLookup({ P3_KEY_GOVERNOR: KEY, P3_KEY_P33: KEY })('governor')).toBeUndefined();
    expect(envKeyLookup({ P3_KEY_GOVERNOR: KEY, P3_KEY_P33: KEY })('p33')).toBeUndefined();
  });
});
