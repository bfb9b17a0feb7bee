import { describe, expect, it } from 'vitest';
import { Decimal } from '../../src/domain/decimal.js';
import { CLIENT_ORDER_ID_RE, clientOrderIdFor, evaluatePermits, orderQty, parseDedupe, reduceOnlyFor } from '../../src/domain/apply.js';
import { checkClosePlan, checkClosePosition } from '../../src/domain/close-guardrails.js';
import { parseApplyConfig } from '../../src/services/apply-layer/config.js';
import { ConfigError } from '../../src/config/env.js';

const ALLOW = { decision: 'ALLOW', reason: 'ok', qty: '0.005', side: 'SELL', symbol: 'BTCUSDT' };
const P = { symbol: 'BTCUSDT' };

describe('apply decisions (pure)', () => {
  it('client order id is deterministic, distinct per plan and valid for Binance', () => {
    expect(clientOrderIdFor('reconclose:BTCUSDT:1769379122')).toBe(clientOrderIdFor('reconclose:BTCUSDT:1769379122'));
    expect(clientOrderIdFor('a')).not.toBe(clientOrderIdFor('b'));
    expect(clientOrderIdFor('x'.repeat(64))).toMatch(CLIENT_ORDER_ID_RE);
  });
  it('permits: wait, DENY reason, mismatches, allow with the p33 qty', () => {
    expect(evaluatePermits({}, ALLOW, P).kind).toBe('wait');
    expect(evaluatePermits({ decision: 'DENY', reason: 'kill_switch' }, {}, P)).toMatchObject({ kind: 'skip', reason: 'kill_switch' });
    expect(evaluatePermits(ALLOW, { ...ALLOW, side: 'BUY' }, P)).toMatchObject({ reason: 'permit_mismatch' });
    expect(evaluatePermits({ ...ALLOW, qty: '0.004' }, ALLOW, P)).toMatchObject({ reason: 'permit_mismatch' });
    expect(evaluatePermits(ALLOW, { ...ALLOW, qty: 'NaN' }, P)).toMatchObject({ reason: 'permit_incomplete' });
    expect(evaluatePermits({ decision: 'MAYBE' }, ALLOW, P)).toMatchObject({ reason: 'permit_invalid' });
    const a = evaluatePermits({ decision: 'ALLOW', symbol: 'BTCUSDT' }, ALLOW, { side: 'SELL', symbol: 'BTCUSDT' });
    expect(a.kind === 'allow' && a.qty.toFixed()).toBe('0.005');
    // permits are bound to the plan: its symbol, and the stream entry they decided
    expect(evaluatePermits(ALLOW, { ...ALLOW, symbol: 'ETHUSDT' }, P)).toMatchObject({ reason: 'permit_mismatch' });
    expect(evaluatePermits(ALLOW, { ...ALLOW, symbol: '' }, P)).toMatchObject({ reason: 'permit_incomplete' });
    expect(evaluatePermits(ALLOW, { ...ALLOW, entry_id: '1-0' }, P, '2-0')).toMatchObject({ reason: 'permit_mismatch' });
    expect(evaluatePermits(ALLOW, { ...ALLOW, entry_id: '2-0' }, P, '2-0').kind).toBe('allow');
  });
  it('quantities round down to the lot step; below min gives no order', () => {
    expect(orderQty(new Decimal('0.0349'), new Decimal('0.001'), new Decimal('0.001'))?.toFixed()).toBe('0.034');
    expect(orderQty(new Decimal('0.0009'), new Decimal('0.001'), new Decimal('0.001'))).toBeNull();
  });
  it('exits are always reduce-only; unknown dedupe values read as done', () => {
    expect(reduceOnlyFor({ action: 'PARTIAL_75', reduceOnly: false })).toBe(true);
    expect(reduceOnlyFor({ action: 'OPEN', reduceOnly: 'false' })).toBe(false);
    expect(parseDedupe('1')).toMatchObject({ stage: 'done' });
    expect(parseDedupe('sending|1-0|i:ab')).toMatchObject({ stage: 'sending', entryId: '1-0' });
  });
  it('close guardrails use the raw plan: a missing reduceOnly is not true', () => {
    const raw = { plan_id: 'p', symbol: 'BTCUSDT', decision: 'RECONCILE_CLOSE', side: 'SELL', qty: '0.007', type: 'MARKET', reason: 'reconcile_drift', source: 'p3.4', ts_ms: 1000, drift_sig: 's' };
    expect(checkClosePlan({ raw, macOk: true, allowlist: ['BTCUSDT'], nowMs: 1000, maxAgeMs: 120_000 })).toMatchObject({ ok: false, rule: 'reduce_only' });
    expect(checkClosePlan({ raw: { ...raw, reduceOnly: true }, macOk: true, allowlist: ['BTCUSDT'], nowMs: 1000, maxAgeMs: 120_000 })).toEqual({ ok: true });
    expect(checkClosePosition(new Decimal('0.007'), 'SELL', new Decimal('0'))).toMatchObject({ rule: 'side' });
    expect(checkClosePosition(new Decimal('0.007'), 'BUY', new Decimal('-0.007'))).toEqual({ ok: true });
  });
  it('live refuses to start without APPLY_ALLOW_LIVE=yes; bad values name the variable', () => {
    const keys = { P3_KEY_GOVERNOR: 'g'.repeat(32), P3_KEY_P33: 'p'.repeat(32) };
    const env = { P3_ALLOWLIST: 'BTCUSDT', APPLY_MODE: 'live', ...keys };
    expect(() => parseApplyConfig(env)).toThrow(ConfigError);
    expect(() => parseApplyConfig(env)).toThrow(/APPLY_ALLOW_LIVE/);
    expect(parseApplyConfig({ ...env, APPLY_ALLOW_LIVE: 'yes' }).mode).toBe('live');
    expect(() => parseApplyConfig({ P3_ALLOWLIST: 'BTCUSDT', APPLY_PERMIT_WAIT_MS: 'soon', ...keys })).toThrow(/APPLY_PERMIT_WAIT_MS/);
    expect(parseApplyConfig({ P3_ALLOWLIST: 'BTCUSDT', ...keys }).mode).toBe('dry_run');
    // permit keys (docs/architecture.md#least-privilege-and-signed-permits): the apply layer cannot verify permits without them, so it does not start
    expect(() => parseApplyConfig({ P3_ALLOWLIST: 'BTCUSDT', P3_KEY_P33: keys.P3_KEY_P33 })).toThrow(/P3_KEY_GOVERNOR: must be set/);
    expect(() => parseApplyConfig({ P3_ALLOWLIST: 'BTCUSDT', P3_KEY_GOVERNOR: keys.P3_KEY_GOVERNOR, P3_KEY_P33: '' })).toThrow(/P3_KEY_P33: must be set/);
  });
  it('config: claim durability (docs/architecture.md#exactly-once-execution): exchange-query by default; the settle covers the recvWindow', () => {
    const base = { P3_ALLOWLIST: 'BTCUSDT', P3_KEY_GOVERNOR: 'g'.repeat(32), P3_KEY_P33: 'p'.repeat(32) };
    expect(parseApplyConfig(base)).toMatchObject({ claimDurability: 'exchange-query', claimQuerySettleMs: 10_000, claimWaitReplicas: 1, claimWaitTimeoutMs: 100 });
    expect(parseApplyConfig({ ...base, P3_CLAIM_DURABILITY: 'replica-wait' }).claimDurability).toBe('replica-wait');
    expect(() => parseApplyConfig({ ...base, P3_CLAIM_DURABILITY: 'trust-me' })).toThrow(/P3_CLAIM_DURABILITY/);
    expect(() => parseApplyConfig({ ...base, APPLY_CLAIM_QUERY_SETTLE_MS: '3000' })).toThrow(/APPLY_CLAIM_QUERY_SETTLE_MS: must be at least EXCHANGE_RECV_WINDOW_MS \+ 1000 \(6000\)/);
    expect(() => parseApplyConfig({ ...base, EXCHANGE_RECV_WINDOW_MS: '20000' })).toThrow(/APPLY_CLAIM_QUERY_SETTLE_MS/);
    expect(parseApplyConfig({ ...base, EXCHANGE_RECV_WINDOW_MS: '20000', APPLY_CLAIM_QUERY_SETTLE_MS: '21000' }).claimQuerySettleMs).toBe(21_000);
  });
});
