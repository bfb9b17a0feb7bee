/**
 * The names of the events written to the audit streams `quantum:stream:reconcile.events` and
 * `quantum:stream:governor.events`: one registry, so a name is written and read the same way everywhere.
 *
 * Invariants:
 * - Every event a process writes is named here; TypeScript writes `EVENT.<NAME>`, never a bare string, and a
 *   Lua script that writes an event keeps the literal, which must be a name of this registry
 *   (test/unit/event-names.test.ts checks both, and that every name here is written somewhere).
 * - The list in docs/glossary.md (section "Event names") is this registry (the same test checks it).
 * - Pure: no I/O.
 */

/** The stream an event is written to (key without the `quantum:stream:` prefix). */
export type EventStream = 'reconcile.events' | 'governor.events';

/** What the registry says of one event. */
export interface EventInfo {
  stream: EventStream;
  /** Who writes it (script or module). */
  writer: string;
  /** What it records, in one sentence. */
  meaning: string;
}

/** Every event name, with its stream, writer and meaning. */
export const EVENTS = {
  /** A hold was set: by the engine on a drift (reconcileApply-11.lua), by an operator (operatorHold-5.lua), or an operator's hold seen by the engine. */
  HOLD_SET: { stream: 'reconcile.events', writer: 'reconcileApply-11.lua, operatorHold-5.lua', meaning: 'A hold was set on the symbol (engine hold with its hold_sig, or an operator hold: owner=operator).' },
  /** A hold was cleared: by the engine once healed, by an operator, or an operator's hold seen gone. */
  HOLD_CLEARED: { stream: 'reconcile.events', writer: 'reconcileApply-11.lua, operatorHold-5.lua', meaning: 'The hold of the symbol was cleared (healed, lifted by an operator, or an operator hold gone).' },
  /** The symbol entered MANUAL_REQUIRED: no automatic close will heal its hold. */
  MANUAL_REQUIRED: { stream: 'reconcile.events', writer: 'reconcileApply-11.lua', meaning: 'No automatic close will heal this hold: a person must act (docs/runbook.md).' },
  /** A signed RECONCILE_CLOSE plan was published for a drift and cooldown bucket. */
  RECONCILE_CLOSE_PUBLISHED: { stream: 'reconcile.events', writer: 'closePublish-5.lua', meaning: 'A signed RECONCILE_CLOSE plan was published for the drift (one per drift signature and cooldown bucket).' },
  /** A legacy ledger layout was migrated to the canonical fields during a ledger write. */
  LEDGER_MIGRATED: { stream: 'reconcile.events', writer: 'includes/ledgerCas.lua (ledgerWrite-4.lua, applyRecord-8.lua)', meaning: 'A legacy ledger layout was replaced by the canonical fields in the same write.' },
  /** The engine created a missing ledger from the exchange position. */
  LEDGER_INIT: { stream: 'reconcile.events', writer: 'reconcile engine', meaning: 'A missing ledger was initialised from the exchange position.' },
  /** The engine set the ledger to the exchange under the adopt heal policy (no evidence). */
  LEDGER_ADOPTED: { stream: 'reconcile.events', writer: 'reconcile engine', meaning: 'The ledger was set to the exchange without evidence (heal policy adopt).' },
  /** The engine set the ledger to the exchange because recorded fills explain the difference. */
  AUTO_REPAIR: { stream: 'reconcile.events', writer: 'reconcile engine', meaning: 'The ledger was set to the exchange because recorded fills (evidence) explain the difference.' },
  /** The ledger followed a liquidation the venue journal shows (`P34_VENUE_CLOSE_POLICY=adopt`). */
  LIQUIDATION: { stream: 'reconcile.events', writer: 'reconcile engine', meaning: "The exchange liquidated (part of) the position; the ledger followed it (venue close policy adopt), no order sent." },
  /** The ledger followed an auto-deleveraging the venue journal shows. */
  ADL: { stream: 'reconcile.events', writer: 'reconcile engine', meaning: 'The exchange auto-deleveraged (part of) the position; the ledger followed it (venue close policy adopt), no order sent.' },
  /** The ledger followed a settlement (delisting, delivery) the venue journal shows. */
  SETTLEMENT: { stream: 'reconcile.events', writer: 'reconcile engine', meaning: 'The exchange settled (part of) the position; the ledger followed it (venue close policy adopt), no order sent.' },
  /** An operator set the ledger (`p3 ledger set`). */
  LEDGER_SET: { stream: 'reconcile.events', writer: 'operator tools (p3 ledger set)', meaning: 'An operator set the ledger of the symbol.' },
  /** An operator requested a FLATTEN of a symbol. */
  FLATTEN_REQUESTED: { stream: 'reconcile.events', writer: 'operator tools (p3 flatten, console)', meaning: "An operator's signed FLATTEN plan was published." },
  /** A FLATTEN order filled. */
  FLATTEN_EXECUTED: { stream: 'reconcile.events', writer: 'apply layer', meaning: 'The FLATTEN order was executed (with the position read again after the fill).' },
  /** A FLATTEN found nothing to close. */
  FLATTEN_SKIPPED: { stream: 'reconcile.events', writer: 'apply layer', meaning: 'The FLATTEN found the position already flat: nothing was sent.' },
  /** A FLATTEN order did not execute. */
  FLATTEN_FAILED: { stream: 'reconcile.events', writer: 'apply layer', meaning: 'The FLATTEN order did not execute.' },
  /** The governor tripped a symbol's circuit breaker. */
  CIRCUIT_BREAKER_TRIPPED: { stream: 'governor.events', writer: 'governor (breakerTrip-3.lua)', meaning: 'The circuit breaker of the symbol tripped after repeated failures, for its cooldown.' },
  /** The global or a symbol's trading state (kill switch) was set. */
  TRADING_STATE_SET: { stream: 'governor.events', writer: 'operator tools (p3, console); governor (lossLimit-3.lua, fillThrottle-3.lua: REDUCING)', meaning: 'The global or the symbol trading state was set (ACTIVE, REDUCING, HALTED).' },
  /** The governor's loss limit tripped: the global trading state became REDUCING. */
  LOSS_LIMIT_TRIPPED: { stream: 'governor.events', writer: 'governor (lossLimit-3.lua)', meaning: "The trading day's loss passed GOVERNOR_MAX_DAILY_LOSS_USD: trading REDUCING until an operator re-arms it." },
  /** The governor's repeated-execution throttle tripped a symbol. */
  FILL_THROTTLE_TRIPPED: { stream: 'governor.events', writer: 'governor (fillThrottle-3.lua)', meaning: 'Too many fills of the symbol in the window: the symbol REDUCING until an operator re-arms it.' },
  /** An operator lifted the shared exchange back-off. */
  EXCHANGE_BACKOFF_CLEARED: { stream: 'governor.events', writer: 'operator tools (p3 exchange-backoff clear)', meaning: 'An operator lifted the shared exchange back-off.' },
} as const satisfies Record<string, EventInfo>;

/** An event name of the registry. */
export type EventName = keyof typeof EVENTS;

/** The event names as constants (`EVENT.HOLD_SET`), for writers and readers. See {@link EVENTS} for each. */
export const EVENT = Object.freeze(Object.fromEntries(Object.keys(EVENTS).map((k) => [k, k]))) as { readonly [K in EventName]: K };

/** True when `name` is an event name of the registry. */
export function isEventName(name: string): name is EventName {
  return Object.hasOwn(EVENTS, name);
}
