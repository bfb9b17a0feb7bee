/**
 * The price collar and the stale-mark check repeated by the apply layer at the last moment before an
 * entry's request goes out (docs/risk-controls.md#price-collar): the market may have moved between the
 * governor's permit and the send. Reads the symbol's snapshot mark fields (`mark_price`, `mark_ts_ms`,
 * `index_price`, refreshed by the position brain at least every 2 s) and runs the same pure rules as the
 * governor (src/domain/risk-controls/) with the same settings (`GOVERNOR_PRICE_COLLAR_BPS[_<SYM>]`,
 * `GOVERNOR_MARK_INDEX_MAX_BPS[_<SYM>]`, `GOVERNOR_MARK_MAX_AGE_MS[_<SYM>]` in the apply layer's
 * environment). A breach throws `SendRefused` (`price_collar` / `stale_mark`): nothing is sent, the plan's
 * result is `SKIPPED` with that reason. Entries only.
 */
import type { Redis } from 'ioredis';
import { SendRefused } from '../../../adapters/exchange/errors.js';
import { keys } from '../../../adapters/redis/keys.js';
import { Decimal } from '../../../domain/decimal.js';
import { checkMarkAge, checkPriceCollar } from '../../../domain/risk-controls/index.js';
import { forSymbol, type RiskConfig } from '../../governor/risk/config.js';
import { readMark } from '../../governor/risk/controls.js';

/**
 * Checks an entry's price at send time.
 * @param refPrice the plan's `ref_price` (decimal string), null/undefined when absent
 * @throws SendRefused on a breach; Redis errors (the order is not sent either)
 */
export async function checkPriceAtSend(redis: Redis, symbol: string, refPrice: string | null | undefined, cfg: RiskConfig, nowMs = Date.now()): Promise<void> {
  const m = readMark(await redis.hgetall(keys.snapshot(symbol)));
  const age = checkMarkAge(m.markTsMs, nowMs, forSymbol(cfg.markMaxAgeMs, symbol));
  if (!age.ok) throw new SendRefused(age.reason, `mark price stale just before sending (${JSON.stringify(age.context)})`);
  const ref = refPrice !== null && refPrice !== undefined && refPrice !== '' ? new Decimal(refPrice) : null;
  const collar = checkPriceCollar({ mark: m.mark, refPrice: ref, indexPrice: m.indexPrice, collarBps: forSymbol(cfg.collarBps, symbol), markIndexMaxBps: forSymbol(cfg.markIndexMaxBps, symbol) });
  if (!collar.ok) throw new SendRefused(collar.reason, `price moved out of the collar just before sending (${JSON.stringify(collar.context)})`);
}
