/** Governor limits configuration (docs/architecture.md#risk-limits-and-trading-states): old and new names, and the fail-closed rules. */
import { describe, expect, it } from 'vitest';
import { parseGovernorConfig as parse } from '../../src/services/governor/config.js';

/** Every governor needs its permit key. */
const parseGovernorConfig = (env: Record<string, string>) => parse({ P3_KEY_GOVERNOR: 'k'.repeat(40), ...env });

describe('governor limits configuration', () => {
  it('GOVERNOR_MAX_ORDER_USD wins over the round-1 GOVERNOR_MAX_NOTIONAL_USD, which is still read', () => {
    expect(parseGovernorConfig({ GOVERNOR_MAX_NOTIONAL_USD: '500' }).maxNotionalUsd.toFixed()).toBe('500');
    expect(parseGovernorConfig({ GOVERNOR_MAX_NOTIONAL_USD: '500', GOVERNOR_MAX_ORDER_USD: '700' }).maxNotionalUsd.toFixed()).toBe('700');
    expect(parseGovernorConfig({ GOVERNOR_MAX_NOTIONAL_USD_BTCUSDT: '1', GOVERNOR_MAX_ORDER_USD_BTCUSDT: '2' }).maxNotionalUsdBySymbol.BTCUSDT?.toFixed()).toBe('2');
  });

  it('position and gross limits are off by default; bad values and a gross limit without an allowlist stop the start', () => {
    const c = parseGovernorConfig({});
    expect([c.maxPositionUsd, c.maxGrossUsd]).toEqual([null, null]);
    expect(parseGovernorConfig({ GOVERNOR_MAX_POSITION_USD_ETHUSDT: '600' }).maxPositionUsdBySymbol.ETHUSDT?.toFixed()).toBe('600');
    expect(() => parseGovernorConfig({ GOVERNOR_MAX_POSITION_USD: '-1' })).toThrow(/GOVERNOR_MAX_POSITION_USD/);
    expect(() => parseGovernorConfig({ GOVERNOR_MAX_GROSS_USD: 'lots' })).toThrow(/GOVERNOR_MAX_GROSS_USD/);
    expect(() => parseGovernorConfig({ GOVERNOR_MAX_GROSS_USD: '800' })).toThrow(/GOVERNOR_MAX_GROSS_USD.*P3_ALLOWLIST/);
    expect(parseGovernorConfig({ GOVERNOR_MAX_GROSS_USD: '800', P3_ALLOWLIST: 'BTCUSDT' }).maxGrossUsd?.toFixed()).toBe('800');
  });
});
