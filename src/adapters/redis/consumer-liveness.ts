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
 * - Unleased readers: a consumer of the group seen reading without a lease in two liveness rounds in a row
 *   (a consumer that just resumed from a freeze renews its lease long before the second) is logged as an error
 *   and reported to `onUnleasedConsumer`: every consumer of this code holds one, so it is another Redis user
 *   reading or acknowledging the group's entries.
 * {@link DeadConsumerTakeover} runs one such round for a `StreamConsumer` (consumer.ts).
 * Invariants: nothing here acknowledges or drops an entry (taken-over entries are handed to the consumer,
 * which handles them as redelivered); only absent leases and idle consumers are acted on; a consumer never
 * claims from or reaps itself.
 */
import type { Redis } from 'ioredis';
import { keys } from './keys.js';
import { consumerReap } from './scripts/index.js';
import { OTHER_GROUPS_REAP_MS, fieldsToObject, type ResolvedConsumerOptions, type StreamEntry } from './consumer-types.js';

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
  return (await consumerReap(redis, stream, group, consumer, minIdleMs)) === 'deleted';
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

/**
 * The liveness round of one `StreamConsumer` (consumer.ts; see the module comment): takes over the pending
 * entries of its group's dead consumers, deletes the dead ones that own nothing, the dead consumers of the
 * stream's other groups every {@link OTHER_GROUPS_REAP_MS} with `reap: 'stream'`, and reports consumers
 * reading without a lease.
 */
export class DeadConsumerTakeover {
  private lastOtherReapMs = 0;
  private unleasedSeen = new Set<string>();

  /** @param opts the consumer's options (its name, group, lease, `count`, `reap`, logger, `onUnleasedConsumer`) */
  constructor(private readonly opts: Pick<ResolvedConsumerOptions, 'redis' | 'stream' | 'group' | 'consumer' | 'leaseMs' | 'count' | 'logger' | 'reap' | 'onUnleasedConsumer'>) {}

  /**
   * Takes over the pending entries of dead consumers, each handed to `dispatch` (as redelivered), and deletes
   * dead consumers that own nothing; stops taking over once `signal` is aborted.
   */
  async run(signal: AbortSignal, dispatch: (entry: StreamEntry) => Promise<void>): Promise<void> {
    const { redis, stream, group, consumer, leaseMs, count, logger, reap } = this.opts;
    const { dead, unleasedActive } = await groupLiveness(redis, stream, group, consumer, leaseMs);
    this.reportUnleased(unleasedActive.map((c) => c.name));
    for (const c of dead) {
      if (signal.aborted) return;
      if (c.pending > 0) {
        const entries = await claimFromConsumer(redis, stream, group, c.name, consumer, leaseMs, count);
        if (entries.length > 0) logger.info({ stream, group, from: c.name, entries: entries.length, idle_ms: c.idleMs }, `took over ${entries.length} pending entr${entries.length === 1 ? 'y' : 'ies'} of dead consumer ${c.name}`);
        for (const [id, f] of entries) await dispatch({ id, fields: fieldsToObject(f) });
      } else if (reap !== 'none' && (await reapConsumer(redis, stream, group, c.name, leaseMs))) {
        logger.info({ stream, group, consumer: c.name, idle_ms: c.idleMs }, `deleted dead consumer ${c.name} (no lease, nothing pending)`);
      }
    }
    if (reap === 'stream' && Date.now() - this.lastOtherReapMs >= OTHER_GROUPS_REAP_MS) {
      this.lastOtherReapMs = Date.now();
      // never fatal to this consumer's own work (e.g. NOPERM under an ACL file older than this code)
      try {
        for (const d of await reapOtherGroups(redis, stream, group, leaseMs)) logger.info({ stream, group: d.group, consumer: d.consumer }, `deleted dead consumer ${d.consumer} of group ${d.group} (no lease, nothing pending)`);
      } catch (err) {
        logger.warn({ err: (err as Error).message, stream }, "deleting the dead consumers of the stream's other groups failed; retried later");
      }
    }
  }

  /**
   * Consumers of this group reading without a liveness lease in two checks in a row (a consumer that just
   * resumed from a freeze renews its lease long before the second): an error log each time, and
   * `onUnleasedConsumer` (a metric). See `GroupLiveness.unleasedActive`.
   */
  private reportUnleased(names: string[]): void {
    const now = new Set(names);
    for (const name of now) {
      if (!this.unleasedSeen.has(name)) continue;
      this.opts.logger.error({ stream: this.opts.stream, group: this.opts.group, consumer: name }, `consumer ${name} reads group ${this.opts.group} without a liveness lease: not a p3 consumer of this group (another Redis user reading or acknowledging its entries?), see ops/redis/README.md`);
      this.opts.onUnleasedConsumer?.(name);
    }
    this.unleasedSeen = now;
  }
}
