/**
 * The result codes of the Lua scripts, by name (an `ErrorCode` per script, as BullMQ has one): each table maps
 * the name a wrapper returns to the integer the script returns. The names are what callers see; the integers
 * stay here and in the scripts' headers. test/unit/script-codes.test.ts parses every script's header (its
 * `Output:` section) and checks that its integer codes are exactly the ones its table names.
 *
 * Invariant: a script's table lists every integer code of its header and nothing else; a script that returns
 * no integer code (a count, an id, a structure) has an empty table.
 */

/** applyCas-1.lua */
export const ApplyCasCode = { swapped: 1, not_expected: 0 } as const;
/** applyBegin-13.lua: `sending` = recorded, the caller may send; every other name: nothing written, must NOT send. */
export const ApplyBeginCode = {
  sending: 1,
  not_owner: 0,
  held: -1,
  hold_changed: -2,
  close_already_sent: -3,
  halted: -4,
  position_changed: -5,
  order_in_flight: -6,
  snapshot_superseded: -7,
  snapshot_unknown: -8,
  reducing: -9,
  reservation_gone: -10,
  breaker_open: -11,
} as const;
/** applyRecord-8.lua (a reply n >= 1 is `recorded` with n = the new ledger version or 1). */
export const ApplyRecordCode = { ledger_conflict: 0, fenced: -1 } as const;
/** breakerTrip-3.lua */
export const BreakerTripCode = { tripped: 1, not_tripped: 0 } as const;
/** closePublish-5.lua */
export const ClosePublishCode = { published: 1, cooldown_taken: 0, no_hold: -1 } as const;
/** consumerReap-2.lua */
export const ConsumerReapCode = { deleted: 1, kept: 0 } as const;
/** exposureExpire-3.lua */
export const ExposureExpireCode = { released: 1, kept: 0 } as const;
/** exposureReserve-2.lua */
export const ExposureReserveCode = { written: 1, version_moved: 0 } as const;
/** governorIssue-3.lua (first element of the reply) */
export const GovernorIssueCode = { written: 1, exists: 0, rate_limited_global: -1, rate_limited_symbol: -2 } as const;
/** holdRenew-3.lua */
export const HoldRenewCode = { renewed: 1, no_hold: -1, sig_mismatch: -2 } as const;
/** inflightKeep-2.lua */
export const InflightKeepCode = { kept: 1, not_sending: 0 } as const;
/** ledgerWrite-4.lua (a reply n >= 1 is the new version) */
export const LedgerWriteCode = { conflict: 0 } as const;
/** lockRelease-1.lua */
export const LockReleaseCode = { released: 1, not_owner: 0 } as const;
/** lockRenew-1.lua */
export const LockRenewCode = { renewed: 1, not_owner: 0 } as const;
/** operatorHold-5.lua */
export const OperatorHoldCode = { done: 1, no_hold: 0 } as const;
/** permitWrite-1.lua */
export const PermitWriteCode = { written: 1, exists: 0 } as const;
/** planStreamGroupReset-1.lua */
export const PlanStreamGroupResetCode = { reset: 1, moved_on: 0 } as const;
/** planStreamIds-1.lua (first element of the reply) */
export const PlanStreamIdsCode = { removed: 1, unchanged: 0 } as const;
/** snapshotWrite-2.lua (any other reply is the notification entry's id: written) */
export const SnapshotWriteCode = { superseded: 0 } as const;
/** lossLimit-3.lua */
export const LossLimitCode = { tripped_state_set: 2, tripped: 1, recorded: 0 } as const;
/** fillThrottle-3.lua */
export const FillThrottleCode = { tripped_state_set: 2, tripped: 1, not_tripped: 0 } as const;
/** snapshotMark-1.lua */
export const SnapshotMarkCode = { written: 1, not_written: 0 } as const;
/** venueFillRecord-4.lua (a stream entry id when recorded) */
export const VenueFillRecordCode = { already_recorded: 0 } as const;
/** venueGapClear-1.lua */
export const VenueGapClearCode = { cleared: 1, gap_remains: 0 } as const;
/** tokenBucket-2.lua (first element of the reply) */
export const TokenBucketCode = { taken: 1, rate_limited_global: -1, rate_limited_symbol: -2 } as const;

/** A code table: result name → the script's integer. */
export type CodeTable = Readonly<Record<string, number>>;

/** Every script's code table, by script name (scripts with no integer code: empty). */
export const SCRIPT_CODES: Readonly<Record<string, CodeTable>> = {
  applyBegin: ApplyBeginCode,
  applyCas: ApplyCasCode,
  applyEpoch: {},
  applyRecord: ApplyRecordCode,
  breakerTrip: BreakerTripCode,
  closePublish: ClosePublishCode,
  consumerReap: ConsumerReapCode,
  exchangeBackoff: {},
  exposureExpire: ExposureExpireCode,
  exposureReserve: ExposureReserveCode,
  fillThrottle: FillThrottleCode,
  governorIssue: GovernorIssueCode,
  holdRenew: HoldRenewCode,
  inflightKeep: InflightKeepCode,
  ledgerWrite: LedgerWriteCode,
  lockRelease: LockReleaseCode,
  lockRenew: LockRenewCode,
  lossLimit: LossLimitCode,
  operatorHold: OperatorHoldCode,
  permitWrite: PermitWriteCode,
  planStreamGroupReset: PlanStreamGroupResetCode,
  planStreamIds: PlanStreamIdsCode,
  reconcileApply: {},
  reconcileRead: {},
  snapshotMark: SnapshotMarkCode,
  snapshotWrite: SnapshotWriteCode,
  tokenBucket: TokenBucketCode,
  venueFillRecord: VenueFillRecordCode,
  venueGapClear: VenueGapClearCode,
};

/**
 * The name of a script's integer reply.
 * @param fallback the name an unknown reply decodes to: always the script's fail-closed outcome (nothing
 *   written / must not act), as the callers decoded it before
 */
export function decodeCode<T extends CodeTable>(table: T, reply: unknown, fallback: keyof T & string): keyof T & string {
  const n = Number(reply);
  for (const [name, code] of Object.entries(table)) if (code === n) return name as keyof T & string;
  return fallback;
}
