/**
 * Batched acknowledgement of a stream consumer's handled entries (`consumer.ts`).
 *
 * - An entry is acknowledged only after its handler finished, without waiting: the ids handled meanwhile go in
 *   ONE `XACK`, sent with the connection's next pipeline (tick-batch.ts `later`) or alone after at most
 *   {@link ACK_DELAY_MS}. Until then the entry counts as pending in Redis (a crash meanwhile redelivers it;
 *   handlers are idempotent).
 * - Until Redis confirmed the XACK, the entry is "being acknowledged" ({@link AckBatcher.has}): the consumer
 *   never handles it again meanwhile.
 * - Should the XACK fail, the entries stay pending and are handled again (handlers are idempotent), as after a
 *   crash between handling and acknowledging; the consumer is told (`onFailed`) so that it re-reads its own
 *   pending entries.
 */
import type { Redis } from 'ioredis';
import { ACK_DELAY_MS } from './consumer-types.js';
import { tickBatch } from './tick-batch.js';

/** The pending XACK of one consumer (see the module comment). */
export class AckBatcher {
  /** Ids to acknowledge in the next XACK, its reply, and every id handled but not yet acknowledged. */
  private ids: string[] | null = null;
  private sent: Promise<void> = Promise.resolve();
  private readonly acking = new Set<string>();

  /**
   * @param redis the consumer's (non-blocking) connection, whose next pipeline carries the XACK
   * @param onFailed called when an XACK failed, with the error and how many entries it held
   */
  constructor(
    private readonly redis: Redis,
    private readonly stream: string,
    private readonly group: string,
    private readonly onFailed: (err: Error, entries: number) => void,
  ) {}

  /** Acknowledges `id` (its handler finished) in the next XACK, without waiting. */
  ack(id: string): void {
    this.acking.add(id);
    if (!this.ids) {
      const ids: string[] = [];
      this.ids = ids;
      const done = () => {
        if (this.ids === ids) this.ids = null;
        for (const i of ids) this.acking.delete(i);
      };
      this.sent = tickBatch(this.redis)
        .later(() => {
          if (this.ids === ids) this.ids = null;
          return [['xack', this.stream, this.group, ...ids]];
        }, ACK_DELAY_MS)
        .then(([r]) => {
          if (r?.[0]) throw r[0];
        })
        .catch((err: Error) => this.onFailed(err, ids.length))
        .finally(done);
    }
    this.ids.push(id);
  }

  /** Whether `id` was handled and its XACK is not confirmed yet. */
  has(id: string): boolean {
    return this.acking.has(id);
  }

  /** Sends the XACK of the ids handled last at once (if any) and waits until the last XACK settled. */
  async flush(): Promise<void> {
    if (this.ids) tickBatch(this.redis).flushSoon();
    await this.sent;
  }
}
