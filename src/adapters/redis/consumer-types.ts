/**
 * The shapes and constants of the stream consumer (`consumer.ts`), apart from its loop so that its pieces
 * (`consumer-retry.ts`, `consumer-dead-letter.ts`, `consumer-liveness.ts`) share them without importing the
 * consumer: an entry, the errors a handler throws to steer it ({@link PoisonEntry}, {@link HandedOver}), its
 * options and their defaults, its timing constants, and the conversion of Redis' field arrays.
 * Everything here is re-exported from `consumer.ts`, where the guarantees are described.
 */
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { StallReport } from './consumer-watchdog.js';

/**
 * Longest a handled entry waits for its XACK, ms: the XACK rides along with the connection's next
 * pipeline, or goes alone after this. Until then the entry counts as pending in Redis (a
 * crash meanwhile redelivers it; handlers are idempotent).
 */
export const ACK_DELAY_MS = 20;

/** One stream entry: its id and its fields as a flat object. */
export interface StreamEntry {
  id: string;
  fields: Record<string, string>;
}

/**
 * How long an entry handed over to another consumer ({@link HandedOver}) stays untouched before this
 * consumer, when it is the entry's owner in the group's pending list, handles it again (as a redelivery), ms.
 */
export const HANDED_OVER_RECHECK_MS = 5_000;

/**
 * Thrown by a handler when another consumer has taken the entry's work over while this one handled it (its
 * fencing token changed and the work is not finished): the entry is NOT acknowledged (XACK is group-wide and
 * would drop it from the new handler's pending list too, so a crash of that handler would lose it), not
 * counted as a failure and not retried in place; it stays pending and, if it is in this consumer's pending
 * list, is handled again as a redelivery after {@link HANDED_OVER_RECHECK_MS} (found by p3 chaos, seed 102:
 * a plan whose claim was taken over was acknowledged by the consumer that lost it, then its new handler was
 * killed, and the plan never got a result).
 */
export class HandedOver extends Error {}

/** Longest wait between two attempts of a parked entry (see `consumer-retry.ts`), ms. */
export const PARKED_RETRY_MAX_MS = 30_000;

/** How often a consumer with `reap: 'stream'` deletes the dead consumers of the stream's other groups, ms. */
export const OTHER_GROUPS_REAP_MS = 5_000;

/** How long past its BLOCK time a blocking read may stay unanswered before its connection is replaced, ms. */
export const BLOCKING_READ_STALL_MS = 10_000;

/** Thrown by a handler for an entry that can never succeed; the consumer dead-letters and acks it. */
export class PoisonEntry extends Error {
  constructor(
    readonly reason: string,
    message?: string,
  ) {
    super(message ?? reason);
  }
}

/** Options of `StreamConsumer` (consumer.ts, whose module comment describes the modes named here). */
export interface ConsumerOptions {
  redis: Redis;
  stream: string;
  group: string;
  /** Consumer name within the group (stable across restarts when `P3_INSTANCE_ID` is set). */
  consumer: string;
  /** Handles one entry; `redelivered` is true for pending or claimed entries. */
  handler: (entry: StreamEntry, redelivered: boolean) => Promise<void>;
  logger: Logger;
  /** Where a new group starts: `$` (only new entries, default) or `0` (whole stream). */
  startId?: string;
  /** XREADGROUP BLOCK in milliseconds (default 1000). */
  blockMs?: number;
  /** Entries per read (default 10). */
  count?: number;
  /** Idle time after which another consumer's pending entry is claimed, ms (default 30000). */
  claimIdleMs?: number;
  /** Failed attempts before an entry is dead-lettered with reason `handler_error` (default 5). */
  maxAttempts?: number;
  /** Called for every dead-lettered entry (for metrics). */
  onDeadLetter?: (reason: string, entry: StreamEntry) => void;
  /**
   * What happens to an entry whose handler failed `maxAttempts` times: `dead_letter` (default; copied to
   * `<stream>.dlq` and acknowledged) or `park` (left pending and retried with a back-off up to
   * {@link PARKED_RETRY_MAX_MS}, never acknowledged without its handler succeeding; see consumer.ts's module comment).
   */
  exhausted?: 'dead_letter' | 'park';
  /** Longest wait between two attempts of a parked entry, ms (default {@link PARKED_RETRY_MAX_MS}; the first wait is the smaller of 2 s and this). */
  parkedRetryMaxMs?: number;
  /** Called each time an entry is parked, with its failed attempts so far and the last error (for metrics). */
  onParked?: (entry: StreamEntry, attempts: number, err: Error) => void;
  /** Liveness lease, ms (default `CONSUMER_LEASE_MS`, consumer-liveness.ts); a consumer silent this long without a lease is dead. */
  leaseMs?: number;
  /** Partition of an entry (e.g. its symbol): enables partitioned mode (see consumer.ts's module comment). */
  partitionOf?: (entry: StreamEntry) => string;
  /** Most entries in hand at once in partitioned mode (default 16). */
  concurrency?: number;
  /** Partitioned mode: a failed entry is retried in place, blocking its partition (see consumer.ts's module comment). */
  ordered?: boolean;
  /**
   * Who deletes dead consumers (no lease, nothing pending, idle; `consumerReap-2.lua`, XGROUP DELCONSUMER):
   * `group` (default) those of its own group, and itself at a clean stop; `stream` also those of every other
   * group of the stream; `none` never (its Redis user has no DELCONSUMER, which would let it drop another
   * group's pending entries on a shared stream: the apply layer's plan consumer reaps them, with `stream`).
   */
  reap?: 'none' | 'group' | 'stream';
  /** Called for a consumer of the group found reading without a liveness lease twice in a row (for metrics). */
  onUnleasedConsumer?: (consumer: string) => void;
  /**
   * Liveness watchdog (`consumer-watchdog.ts`): time without progress, with entries waiting for the group, after
   * which the consumer is declared stalled and recovered, ms (default `CONSUMER_STALL_MS`, 20 s; 0: no watchdog).
   */
  stallMs?: number;
  /** Liveness watchdog: idle time of an own pending entry that makes a stall, ms (default `CONSUMER_STALL_PENDING_IDLE_MS`, 60 s). */
  pendingStallMs?: number;
  /** Called for every stall the watchdog finds, before the recovery (for metrics and tests). */
  onStall?: (report: StallReport) => void;
}

/** The optional callbacks of {@link ConsumerOptions}: they have no default. */
type ConsumerCallbacks = 'onDeadLetter' | 'partitionOf' | 'onParked' | 'onUnleasedConsumer' | 'onStall';

/** {@link ConsumerOptions} with every default filled in (the callbacks stay optional). */
export type ResolvedConsumerOptions = Required<Omit<ConsumerOptions, ConsumerCallbacks>> & Pick<ConsumerOptions, ConsumerCallbacks>;

/**
 * Converts ioredis' `[k1, v1, k2, v2]` field arrays into an object. Every field becomes an own property,
 * also one named `__proto__` (a plain assignment would change the object's prototype and lose the field).
 */
export function fieldsToObject(arr: string[] | null | undefined): Record<string, string> {
  const o: Record<string, string> = {};
  if (!arr) return o;
  for (let i = 0; i + 1 < arr.length; i += 2) {
    const k = arr[i] as string;
    if (k === '__proto__') Object.defineProperty(o, k, { value: arr[i + 1] as string, enumerable: true, writable: true, configurable: true });
    else o[k] = arr[i + 1] as string;
  }
  return o;
}

/** Entries as XREADGROUP / XAUTOCLAIM return them: `[id, fields]`, fields `null` for an entry deleted from the stream. */
export type RawEntries = Array<[string, string[] | null]>;
