/**
 * Signed permits (DESIGN §15): the governor (`P3_KEY_GOVERNOR`) and the position brain (`P3_KEY_P33`)
 * sign every permit hash they write; the apply layer acts only on permits whose signature verifies for
 * the plan and the stream entry it is executing. Pure: no I/O.
 *
 * Invariants:
 * - The signature (`sig`, hex HMAC-SHA256 with the issuer's key) covers EVERY field of the permit hash
 *   except `sig` itself, the issuer, the plan id and the stream entry id of the plan it decided. Adding,
 *   removing or changing any field, or copying the permit to another plan, another entry or the other
 *   issuer's key, makes verification fail.
 * - The plan id and entry id that are verified are the ones of the plan being executed (given by the
 *   caller), never the ones the hash claims: a validly signed permit of another plan is refused.
 * - The signed string starts with `p3-permit-v1\n`, so it is never valid JSON and can never be mistaken
 *   for a signed plan (plans are signed over canonical JSON) even if a key were shared.
 * - Unsigned, malformed (`sig` not 64 hex) or badly signed permits all verify as false (fail closed);
 *   comparison is constant-time.
 */
import { timingSafeEqual } from 'node:crypto';
import { canonicalJson, hmacHex } from './plan.js';
import type { PermitIssuer } from './permits.js';

/** Name of the permit hash field that carries the signature. */
export const PERMIT_SIG_FIELD = 'sig';

/** Environment variable holding each issuer's permit-signing key. */
export const PERMIT_KEY_ENV: Record<PermitIssuer, string> = { governor: 'P3_KEY_GOVERNOR', p33: 'P3_KEY_P33' };

/** Domain-separation prefix of the signed string (version 1). */
const PREFIX = 'p3-permit-v1\n';

/**
 * The exact string a permit's signature covers: `p3-permit-v1\n` + canonical JSON of
 * `{issuer, plan_id, entry_id, fields}` where `fields` is every hash field except `sig`.
 * @param issuer `governor` | `p33`
 * @param planId the plan id the permit decides
 * @param entryId the stream entry id (`<ms>-<seq>`) of the plan entry it decided
 * @param fields the permit hash fields (strings); a `sig` field is ignored
 */
export function permitSigningString(issuer: PermitIssuer, planId: string, entryId: string, fields: Record<string, string>): string {
  const rest: Record<string, string> = {};
  for (const [k, v] of Object.entries(fields)) if (k !== PERMIT_SIG_FIELD) rest[k] = v;
  return PREFIX + canonicalJson({ issuer, plan_id: planId, entry_id: entryId, fields: rest });
}

/**
 * Signs a permit: returns its fields plus `sig` (hex HMAC-SHA256 of {@link permitSigningString} with `key`).
 * @param key the issuer's key (`P3_KEY_GOVERNOR` / `P3_KEY_P33`), non-empty
 * @throws Error when `key` is empty (never writes an unsigned permit)
 */
export function signPermit<T extends Record<string, string>>(issuer: PermitIssuer, key: string, planId: string, entryId: string, fields: T): T & { sig: string } {
  if (!key) throw new Error(`no ${PERMIT_KEY_ENV[issuer]}: refusing to write an unsigned ${issuer} permit`);
  const { [PERMIT_SIG_FIELD]: _drop, ...rest } = fields;
  void _drop;
  return { ...(rest as T), sig: hmacHex(key, permitSigningString(issuer, planId, entryId, rest)) };
}

/** Why a permit's signature was refused. */
export type PermitSignatureProblem = 'unsigned' | 'malformed_sig' | 'bad_sig';

/**
 * Verifies a permit hash as read from Redis for the plan and entry being executed.
 * @param hash the permit hash (HGETALL), with its `sig`
 * @param planId / entryId of the plan being executed (NOT taken from the hash)
 * @returns `{ok: true}` or the problem (`unsigned`, `malformed_sig`, `bad_sig`)
 */
export function verifyPermit(issuer: PermitIssuer, key: string, planId: string, entryId: string, hash: Record<string, string>): { ok: true } | { ok: false; problem: PermitSignatureProblem } {
  const sig = hash[PERMIT_SIG_FIELD];
  if (sig === undefined || sig === '') return { ok: false, problem: 'unsigned' };
  if (!/^[0-9a-f]{64}$/i.test(sig)) return { ok: false, problem: 'malformed_sig' };
  if (!key) return { ok: false, problem: 'bad_sig' };
  const expected = Buffer.from(hmacHex(key, permitSigningString(issuer, planId, entryId, hash)), 'hex');
  const given = Buffer.from(sig.toLowerCase(), 'hex');
  return expected.length === given.length && timingSafeEqual(expected, given) ? { ok: true } : { ok: false, problem: 'bad_sig' };
}

/**
 * The first permit of a pair whose signature does not verify, with why. `other_entry`: a GENUINE permit
 * of another stream entry of the same plan id (a plan submitted twice, the issuers decided the other
 * entry): not a forgery, but never valid for this entry either.
 */
export interface PermitSignatureFailure {
  issuer: PermitIssuer;
  problem: PermitSignatureProblem | 'other_entry';
}

/**
 * Verifies the permits of a plan that are present (an absent permit — empty hash — is not decided yet
 * and is left to the caller's wait). Checked before anything in them is read, so a forged DENY is
 * refused the same way as a forged ALLOW.
 * @param keys the issuers' keys (`P3_KEY_GOVERNOR`, `P3_KEY_P33`)
 * @returns null when every present permit verifies, else the first failure (governor first)
 */
export function checkPermitSignatures(
  keys: Record<PermitIssuer, string>,
  planId: string,
  entryId: string,
  permits: Record<PermitIssuer, Record<string, string>>,
): PermitSignatureFailure | null {
  for (const issuer of ['governor', 'p33'] as const) {
    const h = permits[issuer];
    if (Object.keys(h).length === 0) continue;
    const v = verifyPermit(issuer, keys[issuer], planId, entryId, h);
    if (v.ok) continue;
    const other = h.entry_id;
    if (v.problem === 'bad_sig' && other && other !== entryId && verifyPermit(issuer, keys[issuer], planId, other, h).ok) return { issuer, problem: 'other_entry' };
    return { issuer, problem: v.problem };
  }
  return null;
}
