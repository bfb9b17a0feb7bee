/**
 * Signed permits: the governor (`P3_KEY_GOVERNOR`) and the position brain (`P3_KEY_P33`) sign every permit
 * hash they write; the apply layer acts only on permits whose signature verifies for the plan payload, the
 * plan id and the stream entry it is executing. Pure: no I/O.
 *
 * Invariants:
 * - The signature (`sig`, hex HMAC-SHA256 with the issuer's key) covers EVERY field of the permit hash
 *   except `sig` itself, the issuer, and the permit's binding: the plan id, the stream entry id and the
 *   digest of the plan payload ({@link planDigest}: SHA-256 of the entry's exact `plan` string) it decided.
 *   Adding, removing or changing any field, or presenting the permit for another plan id, another entry,
 *   another payload under the same plan id and entry id, or the other issuer's key, makes verification fail.
 * - The binding that is verified is the one of the plan being executed (computed by the caller from the
 *   entry in hand), never the one the hash claims: a validly signed permit of another plan, entry or
 *   payload is refused.
 * - A permit without a plan digest (`plan_digest` field absent or empty, e.g. written in the first permit
 *   format, `p3-permit-v1`) is refused: fail closed.
 * - The signed string starts with `p3-permit-v2\n`, so it is never valid JSON and can never be mistaken
 *   for a signed plan (plans are signed over canonical JSON) even if a key were shared, nor for a permit
 *   of the first format (which did not bind the payload).
 * - Unsigned, malformed (`sig` not 64 hex) or badly signed permits all verify as false (fail closed);
 *   comparison is constant-time.
 */
import { timingSafeEqual } from 'node:crypto';
import { canonicalJson, hmacHex, planDigest } from './plan.js';
import type { PermitIssuer } from './permits.js';

export { planDigest };

/** Name of the permit hash field that carries the signature. */
export const PERMIT_SIG_FIELD = 'sig';

/** Name of the permit hash field that carries the digest of the plan payload it decided (64 lower-case hex). */
export const PERMIT_PLAN_DIGEST_FIELD = 'plan_digest';

/** Environment variable holding each issuer's permit-signing key. */
export const PERMIT_KEY_ENV: Record<PermitIssuer, string> = { governor: 'P3_KEY_GOVERNOR', p33: 'P3_KEY_P33' };

/** Domain-separation prefix of the signed string (version 2: the plan payload's digest is bound). */
const PREFIX = 'p3-permit-v2\n';

const DIGEST_RE = /^[0-9a-f]{64}$/;

/**
 * What a permit decides: one payload of one plan id at one stream entry.
 * - `planId`: the plan's `plan_id`;
 * - `entryId`: the stream entry id (`<ms>-<seq>`) of the plan entry;
 * - `planDigest`: {@link planDigest} of that entry's exact `plan` string (64 lower-case hex).
 */
export interface PermitBinding {
  planId: string;
  entryId: string;
  planDigest: string;
}

/**
 * The exact string a permit's signature covers: `p3-permit-v2\n` + canonical JSON of
 * `{issuer, plan_id, entry_id, plan_digest, fields}` where `fields` is every hash field except `sig`.
 * @param issuer `governor` | `p33`
 * @param binding the plan id, entry id and plan digest the permit decides
 * @param fields the permit hash fields (strings); a `sig` field is ignored
 */
export function permitSigningString(issuer: PermitIssuer, binding: PermitBinding, fields: Record<string, string>): string {
  // a prototype-less object: a field named `__proto__` is a field like any other (on a plain object the
  // assignment would set the prototype and drop the field from what is signed)
  const rest = Object.create(null) as Record<string, string>;
  for (const [k, v] of Object.entries(fields)) if (k !== PERMIT_SIG_FIELD) rest[k] = v;
  return PREFIX + canonicalJson({ issuer, plan_id: binding.planId, entry_id: binding.entryId, plan_digest: binding.planDigest, fields: rest });
}

/**
 * Signs a permit: returns its fields plus `plan_digest` (the binding's digest) and `sig` (hex HMAC-SHA256
 * of {@link permitSigningString} with `key`).
 * @param key the issuer's key (`P3_KEY_GOVERNOR` / `P3_KEY_P33`), non-empty
 * @param binding the plan id, entry id and digest of the plan payload the permit decides
 * @throws Error when `key` is empty (never writes an unsigned permit) or `binding.planDigest` is not 64
 *   lower-case hex (never writes a permit that does not bind the payload)
 */
export function signPermit<T extends Record<string, string>>(issuer: PermitIssuer, key: string, binding: PermitBinding, fields: T): T & { plan_digest: string; sig: string } {
  if (!key) throw new Error(`no ${PERMIT_KEY_ENV[issuer]}: refusing to write an unsigned ${issuer} permit`);
  if (!DIGEST_RE.test(binding.planDigest)) throw new Error(`plan digest must be 64 lower-case hex: refusing to write a ${issuer} permit that does not bind the plan payload`);
  const { [PERMIT_SIG_FIELD]: _drop, ...rest } = fields;
  void _drop;
  const withDigest = { ...(rest as T), [PERMIT_PLAN_DIGEST_FIELD]: binding.planDigest } as T & { plan_digest: string };
  return { ...withDigest, sig: hmacHex(key, permitSigningString(issuer, binding, withDigest)) };
}

/** Why a permit's signature was refused (`no_plan_digest`: the permit does not name the payload it decided). */
export type PermitSignatureProblem = 'unsigned' | 'malformed_sig' | 'no_plan_digest' | 'bad_sig';

/**
 * Verifies a permit hash as read from Redis for the plan payload and entry being executed.
 * @param hash the permit hash (HGETALL), with its `sig` and `plan_digest`
 * @param binding of the plan being executed (NOT taken from the hash): its plan id, entry id and the
 *   {@link planDigest} of the entry's `plan` string
 * @returns `{ok: true}` or the problem (`unsigned`, `malformed_sig`, `no_plan_digest`, `bad_sig`); never throws
 */
export function verifyPermit(issuer: PermitIssuer, key: string, binding: PermitBinding, hash: Record<string, string>): { ok: true } | { ok: false; problem: PermitSignatureProblem } {
  const sig = hash[PERMIT_SIG_FIELD];
  if (sig === undefined || sig === '') return { ok: false, problem: 'unsigned' };
  if (!/^[0-9a-f]{64}$/i.test(sig)) return { ok: false, problem: 'malformed_sig' };
  const digest = hash[PERMIT_PLAN_DIGEST_FIELD];
  if (digest === undefined || digest === '') return { ok: false, problem: 'no_plan_digest' };
  if (!key || !DIGEST_RE.test(binding.planDigest)) return { ok: false, problem: 'bad_sig' };
  const expected = Buffer.from(hmacHex(key, permitSigningString(issuer, binding, hash)), 'hex');
  const given = Buffer.from(sig.toLowerCase(), 'hex');
  return expected.length === given.length && timingSafeEqual(expected, given) ? { ok: true } : { ok: false, problem: 'bad_sig' };
}

/**
 * The first permit of a pair whose signature does not verify, with why:
 * - `other_entry`: a GENUINE permit of another stream entry of the same plan id (a plan submitted twice,
 *   the issuers decided the other entry): not a forgery, but never valid for this entry either;
 * - `other_payload`: a GENUINE permit of this plan id and entry id decided for a different plan payload
 *   (its `plan_digest` is not the digest of the plan being executed): never valid for this payload.
 */
export interface PermitSignatureFailure {
  issuer: PermitIssuer;
  problem: PermitSignatureProblem | 'other_entry' | 'other_payload';
}

/**
 * Verifies the permits of a plan that are present (an absent permit — empty hash — is not decided yet
 * and is left to the caller's wait). Checked before anything in them is read, so a forged DENY is
 * refused the same way as a forged ALLOW. The permit's own claims (`entry_id`, `plan_digest`) are only
 * used to name a refusal, never to accept a permit.
 * @param keys the issuers' keys (`P3_KEY_GOVERNOR`, `P3_KEY_P33`)
 * @param binding of the plan being executed (plan id, entry id, digest of the entry's `plan` string)
 * @returns null when every present permit verifies, else the first failure (governor first); never throws
 */
export function checkPermitSignatures(keys: Record<PermitIssuer, string>, binding: PermitBinding, permits: Record<PermitIssuer, Record<string, string>>): PermitSignatureFailure | null {
  for (const issuer of ['governor', 'p33'] as const) {
    const h = permits[issuer];
    if (Object.keys(h).length === 0) continue;
    const v = verifyPermit(issuer, keys[issuer], binding, h);
    if (v.ok) continue;
    if (v.problem === 'bad_sig') {
      const claimed = { planId: binding.planId, entryId: h.entry_id || binding.entryId, planDigest: h[PERMIT_PLAN_DIGEST_FIELD] ?? '' };
      if (claimed.entryId !== binding.entryId && verifyPermit(issuer, keys[issuer], claimed, h).ok) return { issuer, problem: 'other_entry' };
      if (claimed.entryId === binding.entryId && claimed.planDigest !== binding.planDigest && verifyPermit(issuer, keys[issuer], claimed, h).ok) return { issuer, problem: 'other_payload' };
    }
    return { issuer, problem: v.problem };
  }
  return null;
}
