/** The governor's trading states, without dependencies (the CLI's option parsers load this for `p3 --help`). */

/** Trading states, least to most restrictive: ACTIVE (all plans), REDUCING (reduce-only plans only), HALTED (none). */
export const TRADING_STATES = ['ACTIVE', 'REDUCING', 'HALTED'] as const;
/** Trading state of the system or of one symbol. */
export type TradingState = (typeof TRADING_STATES)[number];
