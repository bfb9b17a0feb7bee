/**
 * The ledger fingerprint is computed in TypeScript (ledgerFingerprint) and in three Lua scripts that
 * compare-and-set the ledger. They must read the same fields in the same order, or a concurrent write
 * could be clobbered (or every write refused). This test pins the Lua side to the TypeScript side. The scripts
 * are read as loaded (includes expanded: ledgerWrite-4 and applyRecord-8 share includes/ledgerCas.lua).
 */
import { describe, expect, it } from 'vitest';
import { ledgerFingerprint } from '../../src/domain/position.js';
import { scriptDefs } from '../../src/adapters/redis/scripts/index.js';

const lua = (file: string) => scriptDefs().get(file.replace(/-\d+\.lua$/, ''))?.lua ?? '';
const LEDGER_FIELDS = "'version', 'ledger_amt', 'ledger_side', 'last_known_amt', 'last_side'";
const JOIN = /s\(h\[1\]\) \.\. '\|' \.\. s\(h\[2\]\) \.\. '\|' \.\. s\(h\[3\]\) \.\. '\|' \.\. s\(h\[4\]\) \.\. '\|' \.\. s\(h\[5\]\) \.\. '\|' \.\. s\((legacyAmt|legacy\[1\])\)/;

describe('ledger fingerprint parity', () => {
  it('the TypeScript fingerprint is version|ledger_amt|ledger_side|last_known_amt|last_side|ledger_amount', () => {
    expect(ledgerFingerprint({ version: '2', ledger_amt: '0.1', ledger_side: 'LONG', last_known_amt: '0.2', last_side: 'SELL' }, { ledger_amount: '0.3' })).toBe('2|0.1|LONG|0.2|SELL|0.3');
  });
  it('ledgerWrite-4.lua and applyRecord-8.lua run the one compare-and-set of includes/ledgerCas.lua', () => {
    for (const f of ['ledgerWrite-4.lua', 'applyRecord-8.lua']) expect(lua(f)).toContain('local function ledgerCas(w)');
  });
  it.each(['ledgerWrite-4.lua', 'applyRecord-8.lua', 'reconcileApply-11.lua'])('%s reads the same fields in the same order', (file) => {
    const src = lua(file);
    expect(src).toMatch(/'HMGET', (KEYS\[|w\.ledger)/);
    expect(src).toContain(LEDGER_FIELDS);
    expect(src).toMatch(/'ledger_amount'/);
    expect(src).toMatch(JOIN);
  });
});
