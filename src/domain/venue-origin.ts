/**
 * Origin of a fill on the account (docs/architecture.md#venue-journal): who made the order that filled.
 * Pure, no I/O.
 *
 * Invariants:
 * - `ours` only for a client order id of the exact shape our apply layer derives from a plan id
 *   (`clientOrderIdFor` in apply.ts: `p3-` + 32 lower-case hex digits); a look-alike is `foreign`.
 * - The exchange's own orders are recognised by Binance's client order id prefixes (liquidation
 *   `autoclose-`, ADL `adl_autoclose`, settlement `settlement_autoclose-`) or by the order type
 *   `LIQUIDATION` / `ADL`; the prefix wins over the order type. Settlement is checked before liquidation
 *   (`settlement_autoclose-` also contains `autoclose-`).
 * - Anything else — a person in the UI, another bot, an empty or unknown id — is `foreign` (the fail-closed
 *   side: a foreign fill is a drift at once).
 */
import { EVENT } from './events.js';

/** Origins of a journaled fill. */
export const VENUE_ORIGINS = ['ours', 'liquidation', 'adl', 'settlement', 'foreign'] as const;
/** One of {@link VENUE_ORIGINS}. */
export type VenueOrigin = (typeof VENUE_ORIGINS)[number];

/** Origins of the exchange's own closing orders (handled by `P34_VENUE_CLOSE_POLICY`). */
export const VENUE_CLOSE_ORIGINS: ReadonlySet<VenueOrigin> = new Set(['liquidation', 'adl', 'settlement']);

/** Our apply layer's client order ids (see `clientOrderIdFor`). */
export const OUR_CLIENT_ORDER_ID_RE = /^p3-[0-9a-f]{32}$/;

/**
 * Classifies a fill by its order's client order id and order type.
 * @param clientOrderId the order's client order id (`c` on the stream, `clientOrderId` on REST)
 * @param orderType the order type (`o`/`ot` on the stream, `type`/`origType` on REST), '' when unknown
 */
export function venueOriginOf(clientOrderId: string, orderType = ''): VenueOrigin {
  const c = clientOrderId ?? '';
  const t = (orderType ?? '').toUpperCase();
  if (OUR_CLIENT_ORDER_ID_RE.test(c)) return 'ours';
  if (c.startsWith('settlement_autoclose-')) return 'settlement';
  if (c.startsWith('adl_autoclose')) return 'adl';
  if (c.startsWith('autoclose-')) return 'liquidation';
  if (t === 'ADL') return 'adl';
  if (t === 'LIQUIDATION') return 'liquidation';
  return 'foreign';
}

/** The event a venue close is reported with (`LIQUIDATION`, `ADL`, `SETTLEMENT`). */
export function venueCloseEvent(origin: VenueOrigin): typeof EVENT.LIQUIDATION | typeof EVENT.ADL | typeof EVENT.SETTLEMENT | null {
  if (origin === 'liquidation') return EVENT.LIQUIDATION;
  if (origin === 'adl') return EVENT.ADL;
  if (origin === 'settlement') return EVENT.SETTLEMENT;
  return null;
}
