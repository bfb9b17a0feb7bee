/**
 * Unsafe production defaults refused at start (ConfigError naming the variable): the env templates'
 * placeholder keys, two issuers sharing a key, placeholder Redis passwords and exchange credentials;
 * RECONCILE_CLOSE on by default when the exchange is unknown; real orders under APPLY_MODE=testnet
 * without APPLY_ALLOW_LIVE. The real templates in ops/env must not start as shipped.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseExchangeConfig } from '../../src/adapters/exchange/factory.js';
import { renderAclFile, usersToWrite } from '../../src/acl/render.js';
import { parseEnvFile } from '../../src/cli/doctor/env-file.js';
import { consoleConfig } from '../../src/console/config.js';
import { exchangeEndpoint } from '../../src/config/exchange-endpoint.js';
import { parseRedisTarget } from '../../src/config/redis.js';
import { parseApplyConfig } from '../../src/services/apply-layer/config.js';
import { parseGovernorConfig } from '../../src/services/governor/config.js';
import { parsePermitsConfig } from '../../src/services/position-state-brain/permits-config.js';
import { parseReconcileEngineConfig } from '../../src/services/reconcile-engine/config.js';

const PLACEHOLDER = 'change-me-32-bytes-of-random-hex';
const G = 'g'.repeat(40);
const P = 'p'.repeat(40);
const APPLY = { P3_ALLOWLIST: 'BTCUSDT', P3_KEY_GOVERNOR: G, P3_KEY_P33: P };

describe('plan and permit keys', () => {
  it('a placeholder key stops every service naming the variable', () => {
    expect(() => parseGovernorConfig({ P3_KEY_GOVERNOR: PLACEHOLDER })).toThrow(/P3_KEY_GOVERNOR: is a placeholder/);
    expect(() => parseGovernorConfig({ P3_KEY_GOVERNOR: G, P3_KEY_EXIT_BRAIN: PLACEHOLDER })).toThrow(/P3_KEY_EXIT_BRAIN: is a placeholder/);
    expect(() => parsePermitsConfig({ P3_KEY_P33: 'changeme' })).toThrow(/P3_KEY_P33: is a placeholder/);
    expect(() => parseReconcileEngineConfig({ P3_KEY_P3_4: PLACEHOLDER })).toThrow(/P3_KEY_P3_4: is a placeholder/);
    expect(() => parseApplyConfig({ ...APPLY, P3_KEY_OPERATOR: PLACEHOLDER })).toThrow(/P3_KEY_OPERATOR: is a placeholder/);
    expect(() => consoleConfig({}, { P3_KEY_OPERATOR: PLACEHOLDER })).toThrow(/P3_KEY_OPERATOR: is a placeholder/);
  });

  it('two issuers with the same key stop the service naming the second variable', () => {
    expect(() => parseApplyConfig({ ...APPLY, P3_KEY_P33: G })).toThrow(/P3_KEY_P33: has the same value as P3_KEY_GOVERNOR/);
    expect(() => parseApplyConfig({ ...APPLY, P3_KEY_OPERATOR: 'o'.repeat(40), P3_KEY_P3_4: 'o'.repeat(40) })).toThrow(/P3_KEY_P3_4: has the same value as P3_KEY_OPERATOR/);
    expect(() => parseGovernorConfig({ P3_KEY_GOVERNOR: G, P3_KEY_EXIT_BRAIN: G })).toThrow(/P3_KEY_GOVERNOR: has the same value as P3_KEY_EXIT_BRAIN/);
    expect(() => parsePermitsConfig({ P3_KEY_P33: P, P3_KEY_EXIT_BRAIN: P })).toThrow(/same value/);
    expect(parseApplyConfig({ ...APPLY, P3_KEY_OPERATOR: 'o'.repeat(40), P3_KEY_P3_4: 'e'.repeat(40) }).permitKeys).toEqual({ governor: G, p33: P });
  });

  it('the shipped env templates do not start as they are', () => {
    const tpl = (name: string) => parseEnvFile(readFileSync(new URL(`../../ops/env/${name}.env`, import.meta.url), 'utf8'));
    expect(() => parseGovernorConfig(tpl('governor'))).toThrow(/P3_KEY_\w+: is a placeholder/);
    expect(() => parsePermitsConfig(tpl('position-state-brain'))).toThrow(/P3_KEY_\w+: is a placeholder/);
    expect(() => parseReconcileEngineConfig(tpl('reconcile-engine'))).toThrow(/P3_KEY_\w+: is a placeholder/);
    expect(() => parseApplyConfig(tpl('apply-layer'))).toThrow(/P3_KEY_\w+: is a placeholder/);
    for (const s of ['governor', 'position-state-brain', 'reconcile-engine', 'apply-layer', 'console']) expect(() => parseRedisTarget(tpl(s)), s).toThrow(/REDIS_URL: the password is the template's placeholder/);
    expect(() => parseExchangeConfig(tpl('apply-layer'))).toThrow(/EXCHANGE_API_KEY: is the template's placeholder/);
  });
});

describe('placeholder passwords', () => {
  it('REDIS_URL, REDIS_SENTINEL_PASSWORD and p3 redis-acl refuse them', () => {
    expect(() => parseRedisTarget({ REDIS_URL: 'redis://p3-apply:change-me@127.0.0.1:6379' })).toThrow(/REDIS_URL/);
    expect(parseRedisTarget({ REDIS_URL: 'redis://p3-apply:Zq8v1nD4kT0pW7x2@127.0.0.1:6379' }).url).toContain('p3-apply');
    expect(() => parseRedisTarget({ REDIS_URL: 'redis://127.0.0.1:6379', REDIS_SENTINELS: '127.0.0.1:26379', REDIS_SENTINEL_NAME: 'm', REDIS_SENTINEL_PASSWORD: 'changeme' })).toThrow(/REDIS_SENTINEL_PASSWORD/);
    const env = Object.fromEntries(usersToWrite().map((u) => [u.passwordEnv, `${u.user}-real-password-0123456789`]));
    expect(renderAclFile(env)).toContain('user default');
    const first = usersToWrite()[0]!.passwordEnv;
    expect(() => renderAclFile({ ...env, [first]: 'change-me-please-0123' })).toThrow(new RegExp(`${first}: is a placeholder`));
  });
});

describe('exchange endpoint: real money decided by where orders go, not by a mode name', () => {
  it('classifies endpoints, failing closed', () => {
    expect(exchangeEndpoint({}).kind).toBe('unknown');
    expect(exchangeEndpoint({ EXCHANGE: 'paper', EXCHANGE_BASE_URL: 'http://127.0.0.1:8900' }).kind).toBe('local');
    expect(exchangeEndpoint({ EXCHANGE: 'paper', EXCHANGE_BASE_URL: 'https://fapi.binance.com' }).kind).toBe('production');
    expect(exchangeEndpoint({ EXCHANGE: 'binanceusdm', EXCHANGE_BASE_URL: 'https://fapi.binance.com/?demo=testnet' }).kind).toBe('production');
    expect(exchangeEndpoint({ EXCHANGE: 'binanceusdm', EXCHANGE_BASE_URL: 'https://testnet.binancefuture.com' }).kind).toBe('demo');
    expect(exchangeEndpoint({ EXCHANGE: 'binanceusdm', EXCHANGE_DEMO: 'true' }).kind).toBe('demo');
    expect(exchangeEndpoint({ EXCHANGE: 'binanceusdm', EXCHANGE_DEMO: 'false' }).kind).toBe('production');
  });

  it('RECONCILE_CLOSE defaults off unless the exchange is known to be paper, testnet or demo', () => {
    const close = (env: Record<string, string>) => parseReconcileEngineConfig({ P3_KEY_P3_4: 'e'.repeat(40), ...env }).decision.closeEnabled;
    expect(close({})).toBe(false); // the template leaves EXCHANGE commented out
    expect(close({ EXCHANGE: 'paper' })).toBe(false);
    expect(close({ EXCHANGE: 'paper', EXCHANGE_BASE_URL: 'https://fapi.binance.com' })).toBe(false);
    expect(close({ EXCHANGE: 'binanceusdm', EXCHANGE_BASE_URL: 'https://fapi.binance.com/testnet' })).toBe(false);
    expect(close({ EXCHANGE: 'paper', EXCHANGE_BASE_URL: 'http://127.0.0.1:8900' })).toBe(true);
    expect(close({ EXCHANGE: 'binanceusdm', EXCHANGE_DEMO: 'true' })).toBe(true);
    expect(close({ P34_RECONCILE_CLOSE_ENABLED: 'true' })).toBe(true); // explicit: the operator decided
  });

  it('APPLY_MODE=testnet on a production endpoint needs APPLY_ALLOW_LIVE=yes', () => {
    expect(() => parseApplyConfig({ ...APPLY, APPLY_MODE: 'testnet', EXCHANGE: 'binanceusdm', EXCHANGE_DEMO: 'false' })).toThrow(/APPLY_ALLOW_LIVE: APPLY_MODE=testnet would send orders to a production/);
    expect(() => parseApplyConfig({ ...APPLY, APPLY_MODE: 'testnet', EXCHANGE: 'paper', EXCHANGE_BASE_URL: 'https://fapi.binance.com' })).toThrow(/APPLY_ALLOW_LIVE/);
    expect(() => parseApplyConfig({ ...APPLY, APPLY_MODE: 'testnet' })).toThrow(/APPLY_ALLOW_LIVE/);
    expect(parseApplyConfig({ ...APPLY, APPLY_MODE: 'testnet', EXCHANGE: 'binanceusdm', EXCHANGE_DEMO: 'false', APPLY_ALLOW_LIVE: 'yes' }).mode).toBe('testnet');
    expect(parseApplyConfig({ ...APPLY, APPLY_MODE: 'testnet', EXCHANGE: 'binanceusdm', EXCHANGE_DEMO: 'true' }).mode).toBe('testnet');
    expect(parseApplyConfig({ ...APPLY, APPLY_MODE: 'testnet', EXCHANGE: 'paper', EXCHANGE_BASE_URL: 'http://127.0.0.1:8900' }).mode).toBe('testnet');
    expect(() => parseApplyConfig({ ...APPLY, APPLY_MODE: 'live', EXCHANGE: 'binanceusdm' })).toThrow(/APPLY_ALLOW_LIVE/);
    // binanceusdm through a local proxy or tunnel is still Binance: production, not the paper exchange
    expect(exchangeEndpoint({ EXCHANGE: 'binanceusdm', EXCHANGE_BASE_URL: 'http://127.0.0.1:8443' }).kind).toBe('production');
    expect(() => parseApplyConfig({ ...APPLY, APPLY_MODE: 'testnet', EXCHANGE: 'binanceusdm', EXCHANGE_BASE_URL: 'http://127.0.0.1:8443' })).toThrow(/APPLY_ALLOW_LIVE/);
    expect(exchangeEndpoint({ EXCHANGE: 'binanceusdm', EXCHANGE_BASE_URL: 'http://127.0.0.1:8443', EXCHANGE_DEMO: 'true' }).kind).toBe('demo');
  });

  it('the apply layer executes healing closes on a production endpoint only when asked for explicitly', () => {
    const live = { ...APPLY, APPLY_MODE: 'live', EXCHANGE: 'binanceusdm', APPLY_ALLOW_LIVE: 'yes' };
    expect(parseApplyConfig(live).closeEnabled).toBe(false);
    expect(parseApplyConfig({ ...live, APPLY_RECONCILE_CLOSE_ENABLED: 'true' }).closeEnabled).toBe(true);
    expect(parseApplyConfig({ ...APPLY, APPLY_MODE: 'testnet', EXCHANGE: 'paper', EXCHANGE_BASE_URL: 'http://127.0.0.1:8900' }).closeEnabled).toBe(true);
    expect(parseApplyConfig({ ...APPLY, APPLY_MODE: 'testnet', EXCHANGE: 'paper', EXCHANGE_BASE_URL: 'http://127.0.0.1:8900', APPLY_RECONCILE_CLOSE_ENABLED: 'false' }).closeEnabled).toBe(false);
  });
});
