/**
 * A stream watcher for the bench: one dedicated connection in `XREAD BLOCK 0` over some streams, from
 * their current last entry, timestamping every entry on arrival (`performance.now()` ms). Measurements
 * register a waiter BEFORE the action they time, so no entry is missed, and nothing polls Redis.
 */
import type { Redis } from 'ioredis';
import { fieldsToObject } from '../../src/adapters/redis/consumer.js';
import { now } from './stats.js';

/** One entry as seen by the watcher. */
export interface SeenEntry {
  stream: string;
  id: string;
  fields: Record<string, string>;
  /** Arrival time, performance.now() ms. */
  t: number;
}

interface Waiter {
  stream: string;
  match: (e: SeenEntry) => boolean;
  resolve: (e: SeenEntry) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

/** See the module comment. `start()` then `waitFor(...)`; `stop()` closes the connection. */
export class StreamWatcher {
  private readonly ids = new Map<string, string>();
  private waiters = new Set<Waiter>();
  private listeners: Array<(e: SeenEntry) => void> = [];
  private stopped = false;
  private loop: Promise<void> | null = null;

  /** @param conn a connection used for nothing else (it blocks) */
  constructor(
    private readonly conn: Redis,
    private readonly streams: string[],
  ) {}

  /** Reads each stream's current last id, then starts reading. */
  async start(): Promise<void> {
    for (const s of this.streams) {
      const last = (await this.conn.xrevrange(s, '+', '-', 'COUNT', 1)) as Array<[string, string[]]>;
      this.ids.set(s, last[0]?.[0] ?? '0-0');
    }
    this.loop = this.run();
  }

  /** Calls `fn` for every entry (until stop). */
  onEntry(fn: (e: SeenEntry) => void): void {
    this.listeners.push(fn);
  }

  /**
   * Resolves with the first entry of `stream` arriving after this call that satisfies `match`.
   * @throws Error after `timeoutMs`
   */
  waitFor(stream: string, match: (f: Record<string, string>) => boolean, timeoutMs: number, what = 'entry'): Promise<SeenEntry> {
    return new Promise((resolve, reject) => {
      const w: Waiter = {
        stream,
        match: (e) => match(e.fields),
        resolve,
        reject,
        timer: setTimeout(() => {
          this.waiters.delete(w);
          reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what} on ${stream}`));
        }, timeoutMs),
      };
      this.waiters.add(w);
    });
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      let res: Array<[string, Array<[string, string[]]>]> | null;
      try {
        res = (await this.conn.xread('COUNT', 1000, 'BLOCK', 0, 'STREAMS', ...this.streams, ...this.streams.map((s) => this.ids.get(s) as string))) as typeof res;
      } catch {
        if (this.stopped) return;
        await new Promise((r) => setTimeout(r, 20));
        continue;
      }
      const t = now();
      for (const [stream, entries] of res ?? []) {
        for (const [id, f] of entries) {
          this.ids.set(stream, id);
          const e: SeenEntry = { stream, id, fields: fieldsToObject(f), t };
          for (const l of this.listeners) l(e);
          for (const w of this.waiters) {
            if (w.stream === stream && w.match(e)) {
              clearTimeout(w.timer);
              this.waiters.delete(w);
              w.resolve(e);
            }
          }
        }
      }
    }
  }

  /** Stops reading, rejects pending waiters, closes the connection. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.conn.disconnect();
    for (const w of this.waiters) {
      clearTimeout(w.timer);
      w.reject(new Error('watcher stopped'));
    }
    this.waiters.clear();
    await this.loop?.catch(() => undefined);
  }
}
