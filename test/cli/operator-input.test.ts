/**
 * Operator input through the real `p3` binary: a symbol outside the allowlist (a typo: BTCUSTD) is refused
 * by every command that writes, and so is any symbol when no allowlist is set unless --unlisted-symbol;
 * a reason with terminal escape codes is refused (also by the shared operator module and the console's
 * body schema), and what `redis-cli` wrote is printed escaped by `p3 status`, `p3 events`, `p3 plan show`
 * and `p3 trading-state show`. `p3 plan show` finds FLATTEN plans.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { beforeEach, describe, expect, it } from 'vitest';
import { keys, STREAMS } from '../../src/adapters/redis/keys.js';
import { HoldSetBody, LedgerSetBody, parseBody } from '../../src/console/actions.js';
import { OperatorTextError } from '../../src/domain/operator-text.js';
import { setTradingState } from '../../src/services/governor/trading-state.js';
import { setOperatorHold } from '../../src/services/reconcile-engine/operator.js';
import { useTestRedis } from '../helpers/redis.js';

const BIN = fileURLToPath(new URL('../../bin/p3.mjs', import.meta.url));
const run = promisify(execFile);
const t = useTestRedis();
const ESC = '\u001b[2J\u001b[1;1HVERDICT: trading allowed';

async function p3(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(process.execPath, [BIN, ...args], { env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', REDIS_URL: t.srv.url, ...env }, timeout: 30_000 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

const WRITES = (sym: string): string[][] => [
  ['hold', 'set', sym, '--reason', 'investigating'],
  ['hold', 'clear', sym],
  ['ledger', 'set', sym, '0', '--reason', 'fix', '--force'],
  ['trading-state', 'set', sym, 'HALTED', '--reason', 'incident'],
  ['flatten', sym, '--reason', 'incident', '--wait', '0'],
  ['plan', 'submit', '--symbol', sym, '--action', 'FULL_CLOSE'],
];
const KEYS = { P3_KEY_OPERATOR: 'operator-key-for-the-cli-test-0123', P3_KEY_EXIT_BRAIN: 'strategy-key-for-the-cli-test-0123' };

beforeEach(async () => {
  await t.redis.flushdb();
});

describe('operator commands and the allowlist', () => {
  it('refuse a symbol outside P3_ALLOWLIST (exit 2, nothing written)', async () => {
    for (const args of WRITES('BTCUSTD')) {
      const r = await p3(args, { P3_ALLOWLIST: 'BTCUSDT,ETHUSDT', ...KEYS });
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(/BTCUSTD is not in the allowlist \(BTCUSDT,ETHUSDT\)/);
    }
    expect(await t.redis.dbsize()).toBe(0);
  });

  it('P34_ALLOWLIST counts too; a listed symbol is written', async () => {
    const r = await p3(['hold', 'set', 'solusdt', '--reason', 'investigating'], { P3_ALLOWLIST: 'BTCUSDT', P34_ALLOWLIST: 'SOLUSDT' });
    expect(r.code).toBe(0);
    expect(await t.redis.get(keys.hold('SOLUSDT'))).toBe('1');
  });

  it('with no allowlist set, refuse unless --unlisted-symbol', async () => {
    for (const args of WRITES('BTCUSDT')) {
      const r = await p3(args, KEYS);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(/no P3_ALLOWLIST or P34_ALLOWLIST is set here.*--unlisted-symbol/);
    }
    expect(await t.redis.dbsize()).toBe(0);
    const ok = await p3(['trading-state', 'set', 'BTCUSDT', 'HALTED', '--reason', 'incident', '--unlisted-symbol']);
    expect(ok.code).toBe(0);
    expect(await t.redis.hget(keys.tradingState('BTCUSDT'), 'state')).toBe('HALTED');
  });
});

describe('control characters in operator text', () => {
  it('a reason with escape codes or a line break is refused by the CLI (exit 2), nothing written', async () => {
    const env = { P3_ALLOWLIST: 'BTCUSDT', ...KEYS };
    for (const reason of [ESC, 'ok\nVERDICT: trading allowed', 'tab\there', 'bidi \u202e']) {
      for (const args of [
        ['hold', 'set', 'BTCUSDT', '--reason', reason],
        ['ledger', 'set', 'BTCUSDT', '0', '--reason', reason, '--force'],
        ['trading-state', 'set', 'BTCUSDT', 'HALTED', '--reason', reason],
        ['trading-state', 'set', 'HALTED', '--reason', reason],
        ['flatten', 'BTCUSDT', '--reason', reason, '--wait', '0'],
      ]) {
        const r = await p3(args, env);
        expect(r.code, JSON.stringify(args)).toBe(2);
        expect(r.stderr).toMatch(/--reason: must not contain control characters/);
      }
    }
    expect(await t.redis.dbsize()).toBe(0);
  });

  it('the shared operator functions and the console body schema refuse it too', async () => {
    await expect(setOperatorHold(t.redis, { symbol: 'BTCUSDT', ttlSec: 60, reason: ESC, by: 'console:alice' })).rejects.toBeInstanceOf(OperatorTextError);
    await expect(setTradingState(t.redis, { state: 'HALTED', reason: ESC, by: 'console:alice' })).rejects.toBeInstanceOf(OperatorTextError);
    expect(await t.redis.dbsize()).toBe(0);
    const hold = parseBody(HoldSetBody, { reason: ESC });
    expect(hold.ok).toBe(false);
    expect(parseBody(LedgerSetBody, { amount: '0', reason: 'a\nb' }).ok).toBe(false);
    expect(parseBody(HoldSetBody, { reason: 'checking the venue' }).ok).toBe(true);
  });

  it('what redis-cli wrote is printed escaped by status, events, trading-state show and plan show', async () => {
    await t.redis.set(keys.hold('BTCUSDT'), '1', 'EX', 600);
    await t.redis.set(keys.holdReason('BTCUSDT'), ESC, 'EX', 600);
    await t.redis.hset(keys.tradingState(), { state: 'REDUCING', reason: ESC, by: `x${ESC}`, ts_ms: String(Date.now()) });
    await t.redis.xadd(STREAMS.reconcileEvents, '*', 'event', 'HOLD_SET', 'symbol', 'BTCUSDT', 'reason', ESC, 'ts_ms', String(Date.now()));
    await t.redis.xadd(STREAMS.applyResult, '*', 'plan_id', 'p-esc', 'symbol', 'BTCUSDT', 'status', 'SKIPPED', 'reason', ESC);
    for (const args of [['status'], ['events'], ['trading-state', 'show'], ['plan', 'show', 'p-esc']]) {
      const r = await p3(args, { P3_ALLOWLIST: 'BTCUSDT' });
      expect(r.stdout, args.join(' ')).not.toContain('\u001b');
      expect(r.stdout, args.join(' ')).toContain('\\x1b[2J');
    }
    const st = await p3(['status'], { P3_ALLOWLIST: 'BTCUSDT' });
    expect(st.stdout.split('\n').filter((l) => l.startsWith('VERDICT:'))).toEqual([expect.stringMatching(/NOT fully allowed/)]);
  });
});

describe('p3 plan show', () => {
  it('finds a FLATTEN plan on quantum:stream:apply.flatten', async () => {
    const f = await p3(['flatten', 'BTCUSDT', '--reason', 'incident', '--wait', '0'], { P3_ALLOWLIST: 'BTCUSDT', ...KEYS });
    expect(f.code).toBe(0);
    const planId = /plan_id=(\S+)/.exec(f.stdout)?.[1] as string;
    const show = await p3(['plan', 'show', planId]);
    expect(show.code).toBe(0);
    expect(show.stdout).toContain(`submitted  ${STREAMS.applyFlatten}`);
    expect(show.stdout).not.toContain('not found');
  });
});
