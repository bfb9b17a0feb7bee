/**
 * Liveness of stream consumers: fast takeover of a dead consumer's pending entries and
 * clean-up of consumers that are gone, without waiting for a long idle time.
 *
 * - Every running consumer keeps a lease `quantum:consumer:lease:<stream>:<group>:<consumer>` (PX
 *   `leaseMs`, renewed every `leaseMs / 5`). A process killed with `kill -9` (or frozen with SIGSTOP)
 *   stops renewing; its lease is gone within `leaseMs`. A clean stop deletes it at once.
 * - A consumer is DEAD when its lease is absent AND Redis has seen nothing from it for at least
 *   `leaseMs` (XINFO CONSUMERS `idle`): a consumer of an older version (no lease) that is still reading
 *   is therefore never taken for dead while it polls.
 * - Takeover: the pending entries of a dead consumer are XCLAIMed (min idle `leaseMs`, so two live
 *   consumers racing for them get each entry once) and handled as redelivered. Taking an entry from a
 *   consumer that was only frozen is safe: every handler is fenced by its dedupe claim (the apply layer
 *   never sends twice; a resumed owner finds its claim taken over).
 * - Reaping: a dead consumer that owns no pending entry is deleted with XGROUP DELCONSUMER in one atomic
 *   step with those checks (`consumerReap-2.lua`), so no entry is ever dropped with it. On the shared plan
 *   stream only the apply layer reaps (every group's dead consumers, {@link reapOtherGroups}): the governor's
 *   and the brain's Redis users have no DELCONSUMER.
 * Invariants: nothing here acknowledges or drops an entry; only absent leases and idle consumers are
 * acted on; a consumer never claims from or reaps itself.
 */
import type { Redis } from 'ioredis';
import { keys } from './keys.js';
import { callScript } from './scripts.js';

/** Default lease of a consumer, ms: a dead consumer's entries are taken over within about this long. */
export const CONSUMER_LEASE_MS = 3_000;

/** One consumer of a group as XINFO CONSUMERS reports it. */
export interface ConsumerInfo {
  name: string;
  /** Entries delivered to it and not acknowledged. */
  pending: number;
  /** Milliseconds since Redis last saw it read or claim. */
  idleMs: number;
}

/** Writes (or renews) the lease of `consumer`. */
export async function renewConsumerLease(redis: Redis, stream: string, group: string, consumer: string, leaseMs: number): Promise<void> {
  await redis.set(keys.consumerLease(stream, group, consumer), '1', 'PX', leaseMs);
}

/** Deletes the lease of `consumer` (clean stop). */
export async function dropConsumerLease(redis: Redis, stream: string, group: string, consumer: string): Promise<void> {
  await redis.del(keys.consumerLease(stream, group, consumer));
}

/** The consumers of a group (XINFO CONSUMERS). */
export async function groupConsumers(redis: Redis, stream: string, group: string): Promise<ConsumerInfo[]> {
  const raw = (await redis.call('XINFO', 'CONSUMERS', stream, group)) as Array<Array<string | number>>;
  return raw.map((row) => {
    const f: Record<string, string | number> = {};
    for (let i = 0; i + 1 < row.length; i += 2) f[String(row[i])] = row[i + 1] as string | number;
    return { name: String(f.name), pending: Number(f.pending ?? 0), idleMs: Number(f.idle ?? 0) };
  });
}

/** The other consumers of a group by liveness (see {@link groupLiveness}). */
export interface GroupLiveness {
  /** No lease and silent at least `leaseMs`: dead. */
  dead: ConsumerInfo[];
  /**
   * No lease but seen by Redis within `leaseMs`: reading (or acknowledging) without being a consumer of this
   * code, which always holds a lease while it runs: another Redis user acting on this group (ACLs cannot
   * refuse the group argument of the stream-group commands), a consumer whose lease writes are refused
   * (a group name the ACL file was not generated for), or, for a moment, one that just resumed after a freeze.
   */
  unleasedActive: ConsumerInfo[];
}

/**
 * The other consumers of the group (not `self`) without a lease, dead or active (one XINFO CONSUMERS and
 * one EXISTS per other consumer, pipelined).
 */
export async function groupLiveness(redis: Redis, stream: string, group: string, self: string, leaseMs: number): Promise<GroupLiveness> {
  const others = (await groupConsumers(redis, stream, group)).filter((c) => c.name !== self);
  if (others.length === 0) return { dead: [], unleasedActive: [] };
  const pipe = redis.pipeline();
  for (const c of others) pipe.exists(keys.consumerLease(stream, group, c.name));
  const res = (await pipe.exec()) ?? [];
  const unleased = others.filter((_, i) => {
    const [err, n] = res[i] ?? [new Error('no reply'), 1];
    return !err && Number(n) === 0;
  });
  return { dead: unleased.filter((c) => c.idleMs >= leaseMs), unleasedActive: unleased.filter((c) => c.idleMs < leaseMs) };
}

/**
 * The other consumers of the group that are dead (no lease, idle at least `leaseMs`).
 * @param self this consumer's name (never reported)
 */
export async function deadConsumers(redis: Redis, stream: string, group: string, self: string, leaseMs: number): Promise<ConsumerInfo[]> {
  return (await groupLiveness(redis, stream, group, self, leaseMs)).dead;
}

/**
 * Claims up to `count` pending entries of the dead consumer `from` for `to` (XPENDING + XCLAIM with min
 * idle `minIdleMs`, so an entry another consumer claimed meanwhile is skipped).
 * @returns the claimed entries as `[id, fields]` (entries deleted from the stream meanwhile are dropped by XCLAIM)
 */
export async function claimFromConsumer(redis: Redis, stream: string, group: string, from: string, to: string, minIdleMs: number, count: number): Promise<Array<[string, string[]]>> {
  const pending = (await redis.call('XPENDING', stream, group, 'IDLE', minIdleMs, '-', '+', count, from)) as Array<[string, string, number, number]>;
  if (!pending || pending.length === 0) return [];
  const ids = pending.map((p) => p[0]);
  const claimed = (await redis.call('XCLAIM', stream, group, to, minIdleMs, ...ids)) as Array<[string, string[] | null]>;
  return claimed.filter((e): e is [string, string[]] => Array.isArray(e) && e[1] !== null);
}

/**
 * Deletes `consumer` from the group when its lease is absent, it owns no pending entry and it has been
 * idle at least `minIdleMs` (`consumerReap-2.lua`, atomic). @returns true when deleted
 */
export async function reapConsumer(redis: Redis, stream: string, group: string, consumer: string, minIdleMs: number): Promise<boolean> {
  return Number(await callScript(redis, 'consumerReap', [stream, keys.consumerLease(stream, group, consumer)], [group, consumer, minIdleMs])) === 1;
}

/**
 * Deletes the dead consumers (no lease in their group's lease namespace, nothing pending, idle at least
 * `leaseMs`) of every group of `stream` except `ownGroup` (XINFO GROUPS, then `consumerReap-2.lua` per
 * consumer). Run by the one consumer whose Redis user may use XGROUP DELCONSUMER on a shared stream, so the
 * others' users need not (they could drop another group's pending entries with it).
 * @returns the deleted consumers
 * @throws on a Redis error (NOPERM for a user without XINFO GROUPS / DELCONSUMER)
 */
export async function reapOtherGroups(redis: Redis, stream: string, ownGroup: string, leaseMs: number): Promise<Array<{ group: string; consumer: string }>> {
  const raw = (await redis.call('XINFO', 'GROUPS', stream)) as Array<Array<string | number>>;
  const groups = raw.map((row) => String(row[row.indexOf('name') + 1])).filter((g) => g !== ownGroup);
  const deleted: Array<{ group: string; consumer: string }> = [];
  for (const g of groups) {
    for (const c of await deadConsumers(redis, stream, g, '', leaseMs)) {
      if (c.pending === 0 && (await reapConsumer(redis, stream, g, c.name, leaseMs))) deleted.push({ group: g, consumer: c.name });
    }
  }
  return deleted;
}
