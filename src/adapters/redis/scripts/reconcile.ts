/**
 * Typed wrappers of the reconcile engine's, the ledger's and the snapshot publisher's scripts. Each takes named
 * values, builds the script's KEYS from the key registry (keys.ts) in its header's order and returns the decoded
 * reply (names of ./codes.ts, never a raw code).
 */
import type { ChainableCommander, Redis } from 'ioredis';
import { STREAMS, keys } from '../keys.js';
import { callScript, queueScript } from './loader.js';
import { ClosePublishCode, LedgerWriteCode, OperatorHoldCode, SnapshotWriteCode, decodeCode } from './codes.js';

/** The ten keys reconcileRead-10.lua reads for `symbol`, in its header's order. */
export function reconcileReadKeys(s: string): string[] {
  return [keys.snapshot(s), keys.ledger(s), keys.legacyLedger004(s), keys.hold(s), keys.holdReason(s), keys.holdSig(s), keys.applyInflight(s), keys.reconcileState(s), keys.lastFill(s), keys.tradingState(s)];
}

/**
 * reconcileRead-10.lua, queued on a MULTI of a connection made by `createRedis`: its reply (ten items, see the
 * header) comes with the others' from `exec()`.
 */
export function queueReconcileRead(batch: ChainableCommander, symbol: string): void {
  queueScript(batch, 'reconcileRead', reconcileReadKeys(symbol), []);
}

/** reconcileRead-10.lua called on its own (loads the script into a server whose script cache was emptied). @returns the raw ten items */
export async function reconcileRead(redis: Redis, symbol: string): Promise<unknown> {
  return callScript(redis, 'reconcileRead', reconcileReadKeys(symbol), []);
}

/** Arguments of {@link reconcileApply} (see reconcileApply-11.lua's header for each). */
export interface ReconcileApplyArgs {
  symbol: string;
  snapshotFp: string;
  ledgerFp: string;
  status: string;
  reason: string;
  holdAction: 'set' | 'clear' | 'keep';
  driftSig: string;
  holdTtlSec: number;
  state: Record<string, string>;
  eventBase: Record<string, string>;
  eventsMaxlen: number;
  nowMs: number;
  manualRequired: boolean;
  newHoldSig: string;
  readHoldSig: string | null;
  readLastFill: string;
  readInflight: string[];
}

/** Decoded reply of reconcileApply-11.lua. */
export interface ReconcileApplyResult {
  applied: boolean;
  transitioned: boolean;
  hold: 'set' | 'renewed' | 'cleared' | 'kept' | 'operator' | 'none' | 'stale';
  /** The engine hold's episode signature after the call ('' when no engine hold stands). */
  holdSig: string;
}

/** reconcileApply-11.lua: applies one reconcile decision for one symbol atomically. */
export async function reconcileApply(redis: Redis, a: ReconcileApplyArgs): Promise<ReconcileApplyResult> {
  const s = a.symbol;
  const reply = (await callScript(
    redis,
    'reconcileApply',
    [keys.snapshot(s), keys.ledger(s), keys.legacyLedger004(s), keys.reconcileState(s), keys.hold(s), keys.holdReason(s), keys.holdSig(s), STREAMS.reconcileEvents, keys.closeSent(s, a.readHoldSig ?? '-'), keys.applyInflight(s), keys.lastFill(s)],
    [a.snapshotFp, a.ledgerFp, a.status, a.reason, a.holdAction, a.driftSig, a.holdTtlSec, JSON.stringify(a.state), JSON.stringify(a.eventBase), a.eventsMaxlen, a.nowMs, a.manualRequired ? 1 : 0, a.newHoldSig, a.readHoldSig ?? '', a.readLastFill, [...a.readInflight].sort().join(',')],
  )) as [number, number, string, string?];
  return { applied: Number(reply[0]) === 1, transitioned: Number(reply[1]) === 1, hold: reply[2] as ReconcileApplyResult['hold'], holdSig: String(reply[3] ?? '') };
}

/** closePublish-5.lua: publishes a signed close plan while the engine hold with `driftSig` stands and the cooldown is free. */
export async function closePublish(
  redis: Redis,
  a: { symbol: string; driftSig: string; bucket: number; cooldownSec: number; plan: string; mac: string; event: Record<string, string>; maxlen: number },
): Promise<keyof typeof ClosePublishCode> {
  const reply = await callScript(
    redis,
    'closePublish',
    [keys.hold(a.symbol), keys.holdSig(a.symbol), keys.closeCooldown(a.symbol, a.driftSig, a.bucket), STREAMS.reconcileClose, STREAMS.reconcileEvents],
    [a.driftSig, a.cooldownSec, a.plan, a.mac, JSON.stringify(a.event), a.maxlen],
  );
  return decodeCode(ClosePublishCode, reply, 'no_hold');
}

/** operatorHold-5.lua: sets or clears an operator hold of `symbol` with its event. */
export async function operatorHold(
  redis: Redis,
  a: { symbol: string; action: 'set' | 'clear'; ttlSec: number; reason: string; event: Record<string, string>; eventsMaxlen: number },
): Promise<keyof typeof OperatorHoldCode> {
  const s = a.symbol;
  const reply = await callScript(redis, 'operatorHold', [keys.hold(s), keys.holdReason(s), keys.holdSig(s), STREAMS.reconcileEvents, keys.reconcileState(s)], [a.action, a.ttlSec, a.reason, JSON.stringify(a.event), a.eventsMaxlen]);
  return decodeCode(OperatorHoldCode, reply, 'no_hold');
}

/** Arguments of {@link ledgerWrite} (see ledgerWrite-4.lua's header). */
export interface LedgerWriteArgs {
  symbol: string;
  expectedFingerprint: string;
  /** new ledger_amt, signed decimal string */
  amount: string;
  side: 'LONG' | 'SHORT' | 'FLAT';
  /** epoch seconds, decimal string */
  tsEpoch: string;
  source: string;
  /** event fields (JSON object of strings, must include `event`), or '' */
  eventJson: string;
  /** result fields (JSON object of strings), or '' */
  resultJson: string;
  eventsMaxlen: number;
  nowMs: number;
}

/** ledgerWrite-4.lua: compare-and-set of a symbol's ledger. @returns the new version, or `conflict` (nothing written) */
export async function ledgerWrite(redis: Redis, a: LedgerWriteArgs): Promise<{ kind: 'written'; version: number } | { kind: keyof typeof LedgerWriteCode }> {
  const reply = await callScript(
    redis,
    'ledgerWrite',
    [keys.ledger(a.symbol), keys.legacyLedger004(a.symbol), STREAMS.reconcileEvents, STREAMS.applyResult],
    [a.expectedFingerprint, a.amount, a.side, a.tsEpoch, a.source, a.eventJson, a.resultJson, a.eventsMaxlen, a.symbol, a.nowMs],
  );
  const n = Number(reply);
  return n >= 1 ? { kind: 'written', version: n } : { kind: decodeCode(LedgerWriteCode, n, 'conflict') };
}

/**
 * snapshotWrite-2.lua: replaces a symbol's snapshot and adds its notification entry, never back in time.
 * @param fields the new hash (must include ts_ms)
 */
export async function snapshotWrite(
  redis: Redis,
  a: { symbol: string; tsMs: number; maxlen: number; nowMs: number; futureToleranceMs: number; fields: Record<string, string> },
): Promise<{ kind: 'written'; id: string } | { kind: keyof typeof SnapshotWriteCode }> {
  const reply = await callScript(redis, 'snapshotWrite', [keys.snapshot(a.symbol), STREAMS.positionSnapshot], [a.tsMs, a.maxlen, a.nowMs, a.futureToleranceMs, a.symbol, ...Object.entries(a.fields).flat()]);
  return reply === 0 ? { kind: decodeCode(SnapshotWriteCode, reply, 'superseded') } : { kind: 'written', id: String(reply) };
}
