/** The actions and default source of strategy plans, without dependencies (`p3 plan submit`'s option parsers load this for `p3 --help`). */

/** Exit actions sized as a fraction of the current position. */
export const EXIT_ACTIONS = ['FULL_CLOSE', 'PARTIAL_75', 'PARTIAL_50', 'PARTIAL_25'] as const;
/** Every action a strategy may submit (docs/architecture.md#plans). */
export const STRATEGY_ACTIONS = [...EXIT_ACTIONS, 'REDUCE', 'OPEN', 'INCREASE'] as const;
/** One of {@link STRATEGY_ACTIONS}. */
export type StrategyAction = (typeof STRATEGY_ACTIONS)[number];

/** Default plan source (seed 004's exit brain). */
export const DEFAULT_PLAN_SOURCE = 'exit_brain';
