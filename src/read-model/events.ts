/**
 * Reading recent entries of an event stream (`quantum:stream:reconcile.events`, `apply.result`,
 * `governor.events`), newest first in batches with XREVRANGE, optionally only one symbol's and only
 * entries newer than a stream id. Shared by `p3 events` and the operator console. Read-only.
 */
import type { Redis } from 'ioredis';
import { fieldsToObject } from '../adapters/redis/consumer.js';

/** One stream entry: its id (`<ms>-<seq>`) and its fields. */
export interface StreamEvent {
  id: string;
  fields: Record<string, string>;
}

/** Options of {@link recentEvents}. */
export interface RecentEventsQuery {
  /** Only entries whose `symbol` field is this (upper-case); all when omitted. */
  symbol?: string;
  /** At most this many entries (the newest ones). */
  count: number;
  /** Only entries with an id strictly greater than this stream id (`<ms>-<seq>` or `<ms>`); all when omitted. */
  afterId?: string;
  /** Stop after looking at this many entries (bounds the work on a long stream; default 20000). */
  maxScan?: number;
}

/**
 * The newest `count` entries of `stream` matching the query, returned OLDEST first.
 * @throws when Redis fails
 */
export async function recentEvents(redis: Redis, stream: string, q: RecentEventsQuery): Promise<StreamEvent[]> {
  const out: StreamEvent[] = [];
  const min = q.afterId ? `(${q.afterId}` : '-';
  const maxScan = q.maxScan ?? 20_000;
  let end = '+';
  let scanned = 0;
  const batchSize = q.symbol ? 500 : Math.max(1, Math.min(q.count, 500));
  while (out.length < q.count && scanned < maxScan) {
    const batch = (await redis.xrevrange(stream, end, min, 'COUNT', batchSize)) as Array<[string, string[]]>;
    if (batch.length === 0) break;
    scanned += batch.length;
    for (const [id, f] of batch) {
      const fields = fieldsToObject(f);
      if (q.symbol && fields.symbol !== q.symbol) continue;
      if (out.length < q.count) out.push({ id, fields });
    }
    if (batch.length < batchSize) break;
    end = `(${batch[batch.length - 1]![0]}`;
  }
  return out.reverse();
}
