/**
 * Dead-lettering of a stream consumer's entry (`consumer.ts`): an entry whose handler threw `PoisonEntry`
 * (malformed, unsigned, badly signed), or failed `maxAttempts` times without `exhausted: 'park'` (reason
 * `handler_error`), is copied to `<stream>.dlq` and acknowledged in ONE MULTI: never retried forever, never lost.
 *
 * The copy holds every field of the entry plus `dlq_reason`, `dlq_detail` (the error message, at most 500
 * characters), `dlq_source_id` (the entry's id), `dlq_group` (the consumer group) and `dlq_ts_ms` (when, epoch
 * ms); `<stream>.dlq` is capped at about 100000 entries (MAXLEN ~).
 */
import type { Redis } from 'ioredis';
import { dlq } from './keys.js';
import type { StreamEntry } from './consumer-types.js';

/**
 * Copies `entry` of `stream` to `<stream>.dlq` with the reason and acks it for `group`, in one MULTI
 * (see the module comment for the fields added).
 */
export async function deadLetterEntry(redis: Redis, stream: string, group: string, entry: StreamEntry, reason: string, detail: string): Promise<void> {
  const flat: string[] = [];
  for (const [k, v] of Object.entries(entry.fields)) flat.push(k, v);
  flat.push('dlq_reason', reason, 'dlq_detail', detail.slice(0, 500), 'dlq_source_id', entry.id, 'dlq_group', group, 'dlq_ts_ms', String(Date.now()));
  await redis
    .multi()
    .xadd(dlq(stream), 'MAXLEN', '~', 100000, '*', ...flat)
    .xack(stream, group, entry.id)
    .exec();
}
