/**
 * Typed wrappers of the stream-maintenance and exchange back-off scripts (consumer reaping, plan-stream repair,
 * shared back-off). Each takes named values, builds the script's KEYS in its header's order and returns the
 * decoded reply (names of ./codes.ts, never a raw code).
 */
import type { Redis } from 'ioredis';
import { keys } from '../keys.js';
import { callScript } from './loader.js';
import { ConsumerReapCode, PlanStreamGroupResetCode, PlanStreamIdsCode, decodeCode } from './codes.js';

/** consumerReap-2.lua: deletes `consumer` from `group` of `stream` only when that loses nothing (see the header). */
export async function consumerReap(redis: Redis, stream: string, group: string, consumer: string, minIdleMs: number): Promise<keyof typeof ConsumerReapCode> {
  return decodeCode(ConsumerReapCode, await callScript(redis, 'consumerReap', [stream, keys.consumerLease(stream, group, consumer)], [group, consumer, minIdleMs]), 'kept');
}

/** Decoded reply of planStreamIds-1.lua. */
export type PlanStreamIdsResult = { result: 'removed'; lastId: string; deleted: string[] } | { result: 'unchanged'; reason: string };

/** planStreamIds-1.lua: removes ids more than `toleranceMs` ahead of the server's clock from `stream`, when that loses nothing. */
export async function planStreamIds(redis: Redis, stream: string, toleranceMs: number): Promise<PlanStreamIdsResult> {
  const r = (await callScript(redis, 'planStreamIds', [stream], [toleranceMs])) as [number, string, string[]?];
  if (decodeCode(PlanStreamIdsCode, r[0], 'unchanged') === 'unchanged') return { result: 'unchanged', reason: String(r[1]) };
  return { result: 'removed', lastId: String(r[1]), deleted: (r[2] ?? []).map(String) };
}

/** planStreamGroupReset-1.lua: moves `group` of `stream` from `expectedLastId` to `lastId` with its read counter, if still there. */
export async function planStreamGroupReset(
  redis: Redis,
  stream: string,
  a: { group: string; expectedLastId: string; lastId: string; firstId: string | null; entriesRead: number | string },
): Promise<keyof typeof PlanStreamGroupResetCode> {
  return decodeCode(PlanStreamGroupResetCode, await callScript(redis, 'planStreamGroupReset', [stream], [a.group, a.expectedLastId, a.lastId, a.firstId ?? '', a.entriesRead]), 'moved_on');
}

/**
 * exchangeBackoff-2.lua: raises the shared exchange back-off to end `durationMs` from the server's now.
 * @returns what is left of the back-off in force afterwards, ms
 */
export async function exchangeBackoff(redis: Redis, a: { durationMs: number; reason: string; retentionMs: number; maxMs: number }): Promise<number> {
  return Number(await callScript(redis, 'exchangeBackoff', [keys.exchangeBackoffUntil(), keys.exchangeBackoffReason()], [Math.max(0, Math.ceil(a.durationMs)), a.reason, a.retentionMs, a.maxMs]));
}
