/**
 * Dead-lettering of a stream consumer's entry (`consumer.ts`): an entry whose handler threw `PoisonEntry`
 * (malformed, unsigned, badly signed), or failed `maxAttempts` times without `exhausted: 'park'` (reason
 * `handler_error`), is copied to `<stream>.dlq`, and acknowledged only once the copy is written: never retried
 * forever, never lost. (Not one MULTI: Redis runs every queued command even when one fails, so an XADD refused at
 * run time, e.g. a wrong-type key, would still have been acknowledged and the entry lost. A crash between the two
 * steps leaves the entry pending: it is dead-lettered again, a second copy rather than none.)
 *
 * The copy holds every field of the entry plus `dlq_reason`, `dlq_detail` (the error message, at most 500
 * characters), `dlq_source_id` (the entry's id), `dlq_group` (the consumer group) and `dlq_ts_ms` (when, epoch
 * ms); `<stream>.dlq` is capped at about 100000 entries (MAXLEN ~).
 */
import type { Redis } from 'ioredis';
import { dlq } from './keys.js';
import type { StreamEntry } from './consumer-types.js';

/**
 * Copies `entry` of `stream` to `<stream>.dlq` with the reason, then acks it for `group` (see the module comment
 * for the fields added and why the order matters).
 * @throws the XADD's error (nothing acknowledged: the entry stays pending and is handled again)
 */
export async function deadLetterEntry(redis: Redis, stream: string, group: string, entry: StreamEntry, reason: string, detail: string): Promise<void> {
  const flat: string[] = [];
  for (const [k, v] of Object.entries(entry.fields)) flat.push(k, v);
  flat.push('dlq_reason', reason, 'dlq_detail', detail.slice(0, 500), 'dlq_source_id', entry.id, 'dlq_group', group, 'dlq_ts_ms', String(Date.now()));
  await redis.xadd(dlq(stream), 'MAXLEN', '~', 100000, '*', ...flat);
  await redis.xack(stream, group, entry.id);
}
