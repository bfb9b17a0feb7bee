/**
 * The seam between the loss limit and the venue's fills: realized profit (USD) of the fills since a
 * moment. The one implementation reads the venue fills journal `quantum:stream:exchange.fills`, written
 * by the position brain from the exchange's ORDER_TRADE_UPDATE pushes (fields `rp` = realized profit of
 * the fill, `n` = commission, `N` = commission asset; the venue journal's own names `realized_pnl`,
 * `commission`, `commission_asset` are read too).
 * Entry ids are `<epoch ms>-<seq>`, so a day's fills are an XRANGE from the day's start.
 *
 * Fail closed: no journal (the stream does not exist), an unparseable `rp` or commission, or a commission
 * paid in an asset other than a USD stablecoin make the realized profit unknown (null), and the
 * governor then denies entries while a loss limit is configured (docs/risk-controls.md#loss-limit).
 */
import type { Redis } from 'ioredis';
import { STREAMS } from '../../../adapters/redis/keys.js';
import { Decimal, parseDecimal } from '../../../domain/decimal.js';


/** Commission assets counted as USD (the account's margin assets). */
const USD_ASSETS = new Set(['USDT', 'USDC', 'FDUSD', 'BUSD', 'USD']);

/** Where the loss limit reads realized profit. */
export interface RealizedProfitSource {
  /**
   * Realized profit of the fills since `sinceMs` (epoch ms), commissions subtracted, USD; null = unknown.
   * @throws Redis errors (the caller treats them as unknown)
   */
  realizedSince(sinceMs: number): Promise<Decimal | null>;
}

/** Realized profit and commission of one journal entry, or null when unreadable (fail closed). */
export function fillProfit(f: Record<string, string>): Decimal | null {
  const rp = parseDecimal(f.rp ?? f.realized_pnl ?? '0');
  const fee = parseDecimal(f.n ?? f.commission ?? '0');
  const asset = (f.N ?? f.commission_asset ?? 'USDT').toUpperCase();
  if (rp === null || fee === null || (!fee.isZero() && !USD_ASSETS.has(asset))) return null;
  return rp.minus(fee.abs());
}

/**
 * Reads the fills journal incrementally: the running sum of the current window is kept with the last
 * entry id read, so each call reads only the new fills (a new window starts over).
 */
export class FillsJournalProfit implements RealizedProfitSource {
  private state: { sinceMs: number; lastId: string; sum: Decimal } | null = null;

  constructor(
    private readonly redis: Redis,
    private readonly stream = STREAMS.exchangeFills,
  ) {}

  async realizedSince(sinceMs: number): Promise<Decimal | null> {
    if ((await this.redis.exists(this.stream)) === 0) return null;
    if (this.state === null || this.state.sinceMs !== sinceMs) this.state = { sinceMs, lastId: '', sum: new Decimal(0) };
    const st = this.state;
    for (;;) {
      const page = await this.redis.xrange(this.stream, st.lastId === '' ? String(sinceMs) : `(${st.lastId}`, '+', 'COUNT', 1000);
      for (const [id, flat] of page) {
        const f: Record<string, string> = {};
        for (let i = 0; i + 1 < flat.length; i += 2) f[flat[i] as string] = flat[i + 1] as string;
        const p = fillProfit(f);
        if (p === null) {
          this.state = null; // read again next time: the entry stays unreadable, and so does the sum
          return null;
        }
        st.sum = st.sum.plus(p);
        st.lastId = id;
      }
      if (page.length < 1000) return st.sum;
    }
  }
}
