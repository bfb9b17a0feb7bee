/**
 * Permit hashes `quantum:permit:governor:<plan_id>` and `quantum:permit:p33:<plan_id>` (docs/architecture.md#redis-schema):
 * written once (a redelivered plan never flips a decision) with their TTL in one Lua script
 * (`permitWrite-1.lua`), and read back (the apply layer waits for both).
 */
import type { Redis } from 'ioredis';
import { keys } from '../adapters/redis/keys.js';
import { permitWrite } from '../adapters/redis/scripts/index.js';
import { PERMIT_TTL_SEC, type PermitFields, type PermitIssuer } from '../domain/permits.js';

/** Key of a permit. */
export function permitKey(issuer: PermitIssuer, planId: string): string {
  return issuer === 'governor' ? keys.permitGovernor(planId) : keys.permitP33(planId);
}

/**
 * Writes a permit unless one exists for the plan (HSET + EXPIRE in one script). Only signed permits
 * (`signPermit` of src/domain/permit-signature.ts) can be written: the apply layer refuses any other.
 * @param ttlSec lifetime in seconds (default 60)
 * @returns true when written, false when a permit already existed (nothing changed)
 */
export async function writePermitOnce(redis: Redis, issuer: PermitIssuer, fields: PermitFields & { sig: string }, ttlSec = PERMIT_TTL_SEC): Promise<boolean> {
  return (await permitWrite(redis, permitKey(issuer, fields.plan_id), ttlSec, { ...fields })) === 'written';
}

/**
 * {@link writePermitOnce}, sent in this turn's one pipeline with the connection's other operations
 * (`tick-batch.ts`): the same one script call, the same answer.
 * @returns true when written, false when a permit already existed (nothing changed)
 * @throws Redis errors
 */
export async function writePermitBatched(redis: Redis, issuer: PermitIssuer, fields: PermitFields & { sig: string }, ttlSec = PERMIT_TTL_SEC): Promise<boolean> {
  return (await permitWrite(redis, permitKey(issuer, fields.plan_id), ttlSec, { ...fields }, true)) === 'written';
}

/** A permit as read back; `context` parsed (empty object when unparseable). */
export interface StoredPermit {
  decision: string;
  reason: string;
  context: Record<string, unknown>;
  fields: Record<string, string>;
}

/** Reads a permit; null when absent (not decided yet, or expired). */
export async function readPermit(redis: Redis, issuer: PermitIssuer, planId: string): Promise<StoredPermit | null> {
  const h = await redis.hgetall(permitKey(issuer, planId));
  if (!h || Object.keys(h).length === 0) return null;
  let context: Record<string, unknown> = {};
  try {
    const c = JSON.parse(h.context ?? '{}') as unknown;
    if (c && typeof c === 'object' && !Array.isArray(c)) context = c as Record<string, unknown>;
  } catch {
    context = {};
  }
  return { decision: h.decision ?? '', reason: h.reason ?? '', context, fields: h };
}
