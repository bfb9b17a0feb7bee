import { describe, expect, it } from 'vitest';
import { Decimal, fmt, parseDecimal, roundDownToStep } from '../../src/domain/decimal.js';
import { compareAmounts } from '../../src/domain/tolerance.js';
import { readLedger, readSignedAmount, ledgerFingerprint } from '../../src/domain/position.js';

describe('exact decimals', () => {
  it('0.007 - 0.002 is exactly 0.005', () => {
    expect(fmt(parseDecimal('0.007')!.minus(parseDecimal('0.002')!))).toBe('0.005');
  });
  it('rejects unparseable input', () => {
    for (const bad of ['', 'abc', '1,5', 'NaN', 'Infinity', '0x10']) expect(parseDecimal(bad)).toBeNull();
    expect(parseDecimal(Number.NaN)).toBeNull();
  });
  it('rounds down to the lot step', () => {
    expect(fmt(roundDownToStep(new Decimal('0.0349'), new Decimal('0.001')))).toBe('0.034');
    expect(fmt(roundDownToStep(new Decimal('0.0005'), new Decimal('0.001')))).toBe('0');
  });
  it('a diff exactly at tolerance matches, one step above does not', () => {
    expect(compareAmounts(new Decimal('0.008'), new Decimal('0.007'), new Decimal('0.001')).match).toBe(true);
    expect(compareAmounts(new Decimal('0.009'), new Decimal('0.007'), new Decimal('0.001')).match).toBe(false);
    expect(fmt(compareAmounts(new Decimal('0'), new Decimal('0'), new Decimal('0')).diffPct)).toBe('0');
  });
});

describe('reading rule (docs/architecture.md#quantities)', () => {
  it('side wins over sign, invalid combinations fail closed', () => {
    expect(fmt((readSignedAmount('0.002', 'SELL') as { amount: Decimal }).amount)).toBe('-0.002');
    expect(fmt((readSignedAmount('-0.002', 'SHORT') as { amount: Decimal }).amount)).toBe('-0.002');
    expect(fmt((readSignedAmount('-0.002', undefined) as { amount: Decimal }).amount)).toBe('-0.002');
    expect(readSignedAmount('-0.002', 'LONG').ok).toBe(false);
    expect(readSignedAmount('0.001', 'FLAT').ok).toBe(false);
    expect(readSignedAmount('-0.001', 'FLAT').ok).toBe(false);
    expect(readSignedAmount('0', 'FLAT').ok).toBe(true);
    expect(readSignedAmount('x', 'LONG').ok).toBe(false);
    expect(readSignedAmount('0.1', 'SIDEWAYS').ok).toBe(false);
  });
  it('reads seed 000 and seed 004 legacy ledgers; canonical wins', () => {
    const l0 = readLedger({ last_known_amt: '0.002', last_side: 'SELL', last_executed_qty: '0.0', updated_at: '1769299637' }, {});
    expect(l0.kind === 'ok' && fmt(l0.ledger.amount)).toBe('-0.002');
    expect(l0.kind === 'ok' && l0.ledger.layout).toBe('legacy_000');
    const l4 = readLedger({}, { ledger_amount: '0.002' });
    expect(l4.kind === 'ok' && fmt(l4.ledger.amount)).toBe('0.002');
    const c = readLedger({ ledger_amt: '0.01', ledger_side: 'LONG', last_known_amt: '5' }, { ledger_amount: '7' });
    expect(c.kind === 'ok' && fmt(c.ledger.amount)).toBe('0.01');
    expect(readLedger({}, {}).kind).toBe('missing');
    expect(readLedger({ ledger_amt: 'garbage' }, {}).kind).toBe('invalid');
    expect(ledgerFingerprint({ version: '3', ledger_amt: '1' }, {})).toBe('3|1||||');
  });
});
