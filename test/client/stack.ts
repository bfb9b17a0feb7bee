/**
 * The stack the strategy-client tests run against: a private redis-server loaded with the generated ACL file
 * (the client connects as `p3-strategy`, the services as `p3-admin`), AOF on (a restart keeps what reached
 * the disk, as in production), the paper exchange through the real ccxt gateway, a governor, a position
 * brain, a reconcile engine and an apply layer.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { renderAclFile, usersToWrite } from '../../src/acl/render.js';
import { createRedis } from '../../src/adapters/redis/client.js';
import { keys } from '../../src/adapters/redis/keys.js';
import { buildServices } from '../../src/services/index.js';
import type { Service } from '../../src/host/service.js';
import { setMarkPrice, startPaperExchange, type PaperExchange } from '../helpers/paper.js';
import { startTestRedis, waitFor, type TestRedis } from '../helpers/redis.js';

/** The strategy's key and the services' other keys. */
export const CLIENT_KEYS = { P3_KEY_EXIT_BRAIN: 'client-strategy-key', P3_KEY_P3_4: 'client-engine-key', P3_KEY_OPERATOR: 'client-operator-key', P3_KEY_GOVERNOR: 'client-governor-permit-key', P3_KEY_P33: 'client-p33-permit-key' } as const;

/** A running stack. */
export interface ClientStack {
  srv: TestRedis;
  paper: PaperExchange;
  /** A p3-admin connection (for assertions). */
  admin: Redis;
  /** `redis://p3-strategy:<password>@127.0.0.1:<port>` */
  strategyUrl: string;
  /** The environment a strategy host has: REDIS_URL (as p3-strategy) and its key. */
  strategyEnv: Record<string, string>;
  stop(): Promise<void>;
}

/** Starts the stack on `symbols` (flat), marks at `mark`, every symbol reconciled before it returns. */
export async function startClientStack(o: { symbols: string[]; mark?: string; extraEnv?: Record<string, string> }): Promise<ClientStack> {
  const dir = mkdtempSync(join(tmpdir(), 'p3-client-acl-'));
  const pwEnv: Record<string, string> = {};
  const pw: Record<string, string> = {};
  for (const u of usersToWrite({ admin: true })) {
    pwEnv[u.passwordEnv] = pw[u.user] = `${randomBytes(12).toString('hex')}/+`;
  }
  const file = join(dir, 'users.acl');
  writeFileSync(file, renderAclFile(pwEnv, { admin: true }));
  const srv = await startTestRedis({ args: ['--aclfile', file, '--appendonly', 'yes', '--appendfsync', 'everysec'], probeAuth: { user: 'p3-admin', password: pw['p3-admin']! } });
  const urlFor = (user: string) => `redis://${encodeURIComponent(user)}:${encodeURIComponent(pw[user] ?? '')}@127.0.0.1:${srv.port}`;
  const paper = await startPaperExchange({ symbols: o.symbols, positions: Object.fromEntries(o.symbols.map((s) => [s, '0'])) });
  const admin = createRedis(urlFor('p3-admin'), { name: 'test:admin' });
  const env: Record<string, string> = {
    REDIS_URL: urlFor('p3-admin'),
    P3_ALLOWLIST: o.symbols.join(','),
    EXCHANGE: 'paper',
    EXCHANGE_BASE_URL: paper.url,
    EXCHANGE_API_KEY: paper.apiKey,
    EXCHANGE_API_SECRET: paper.apiSecret,
    ...CLIENT_KEYS,
    APPLY_MODE: 'testnet',
    P33_SNAPSHOT_INTERVAL_MS: '100',
    P33_PERMITS_ENABLED: 'true',
    GOVERNOR_MODE: 'live',
    GOVERNOR_RATE_PER_MIN: '6000',
    GOVERNOR_SYMBOL_RATE_PER_MIN: '6000',
    GOVERNOR_MAX_ORDER_USD: '100000',
    // the DENY cases test the position limit itself; the fat finger (an entry above 50 % of that limit) would
    // refuse the same orders first (test/e2e/risk-controls.test.ts covers it)
    GOVERNOR_MAX_ORDER_PCT_OF_POSITION_LIMIT: 'off',
    P34_RECONCILE_CLOSE_ENABLED: 'true',
    GOVERNOR_PROMETHEUS_PORT: '0',
    P34_PROMETHEUS_PORT: '0',
    P33_PROMETHEUS_PORT: '0',
    APPLY_PROMETHEUS_PORT: '0',
    GOVERNOR_LOG_LEVEL: 'error',
    P34_LOG_LEVEL: 'error',
    P33_LOG_LEVEL: 'error',
    APPLY_LOG_LEVEL: 'error',
    ...o.extraEnv,
  };
  const services: Service[] = [];
  for (const [i, name] of (['position-state-brain', 'governor', 'reconcile-engine', 'apply-layer'] as const).entries()) {
    const [svc] = await buildServices([name], { ...env, P3_INSTANCE_ID: `${name}-${i}` });
    await svc!.start();
    services.push(svc!);
  }
  const mark = o.mark ?? '50000';
  for (const sym of o.symbols) await setMarkPrice(paper.url, sym, mark);
  await waitFor(async () => {
    for (const sym of o.symbols) {
      const [st, m] = await Promise.all([admin.hget(keys.reconcileState(sym), 'status'), admin.hget(keys.snapshot(sym), 'mark_price')]);
      if (st !== 'OK' || m !== mark) return false;
    }
    return true;
  }, 30_000, 50, 'reconciled with marks');
  return {
    srv,
    paper,
    admin,
    strategyUrl: urlFor('p3-strategy'),
    strategyEnv: { REDIS_URL: urlFor('p3-strategy'), P3_KEY_EXIT_BRAIN: CLIENT_KEYS.P3_KEY_EXIT_BRAIN },
    async stop() {
      for (const s of services.reverse()) await s.stop().catch(() => undefined);
      admin.disconnect();
      await paper.close();
      await srv.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
