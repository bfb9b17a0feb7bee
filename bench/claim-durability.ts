/**
 * What proving a dedupe claim durable costs (docs/architecture.md#exactly-once-execution, `P3_CLAIM_DURABILITY`; docs/reliability.md), one at a
 * time on this machine, against private redis-servers and the in-process paper exchange through the real ccxt
 * gateway (loopback: the figures are the local floor; against Binance add one REST round trip):
 *
 * - `epoch`: `INFO server replication` + applyEpoch-1.lua after a claim: what `exchange-query` pays for every
 *   claim of a plan created after the last possible Redis loss (no query then);
 * - `query_not_found` / `query_found`: `GET /fapi/v1/order?origClientOrderId=` answered -2013 / with an order:
 *   what a plan created before a Redis restart or failover pays before its first send;
 * - `claim_everysec` / `claim_always`: `SET NX EX` on a Redis with `appendfsync everysec` / `always` (its AOF
 *   in the OS temp folder: the fsync cost depends on that disk);
 * - `claim_wait`: `SET NX EX` + `WAIT 1 100` on a primary with one replica on this machine.
 *
 * Run: `npx tsx bench/claim-durability.ts [n]` (default n = 300). Prints one JSON line.
 */
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { createRedis } from '../src/adapters/redis/client.js';
import { keys } from '../src/adapters/redis/keys.js';
import { applyEpoch } from '../src/adapters/redis/scripts/index.js';
import { createExchangeGateway, parseExchangeConfig } from '../src/adapters/exchange/factory.js';
import { startPaperExchange } from '../harness/paper-exchange/index.js';
import { startRedisServer } from '../harness/redis-server.js';
import { clientOrderIdFor } from '../src/domain/apply.js';
import { Decimal } from '../src/domain/decimal.js';
import { now, summarize } from './lib/stats.js';

async function timeIt(n: number, fn: (i: number) => Promise<unknown>): Promise<ReturnType<typeof summarize>> {
  const xs: number[] = [];
  for (let i = 0; i < Math.min(20, n); i++) await fn(-1 - i); // warm-up
  for (let i = 0; i < n; i++) {
    const t0 = now();
    await fn(i);
    xs.push(now() - t0);
  }
  return summarize(xs);
}

async function epochRead(redis: Redis): Promise<void> {
  const info = String(await redis.call('INFO', 'server', 'replication'));
  const id = `${/^run_id:(\S+)/m.exec(info)?.[1]}:${/^master_replid:(\S+)/m.exec(info)?.[1]}`;
  await applyEpoch(redis, id, Date.now());
}

async function main(): Promise<void> {
  const n = Number(process.argv[2] ?? 300);
  const tag = randomBytes(3).toString('hex');
  const everysec = await startRedisServer('p3-bench-durable-', { args: ['--appendonly', 'yes', '--appendfsync', 'everysec'] });
  const always = await startRedisServer('p3-bench-durable-', { args: ['--appendonly', 'yes', '--appendfsync', 'always'] });
  const replica = await startRedisServer('p3-bench-durable-', { args: ['--replicaof', '127.0.0.1', String(everysec.port)] });
  const paper = await startPaperExchange({ symbols: ['BTCUSDT'], positions: { BTCUSDT: '0' } });
  const r1 = createRedis(everysec.url, { name: 'bench-everysec' });
  const r2 = createRedis(always.url, { name: 'bench-always' });
  const rr = createRedis(replica.url, { name: 'bench-replica' });
  const gateway = createExchangeGateway(parseExchangeConfig({ EXCHANGE: 'paper', EXCHANGE_BASE_URL: paper.url, EXCHANGE_API_KEY: paper.apiKey, EXCHANGE_API_SECRET: paper.apiSecret }));
  try {
    for (let i = 0; i < 200 && !/master_link_status:up/.test(await rr.info('replication')); i++) await new Promise((r) => setTimeout(r, 50));
    await gateway.symbolRules('BTCUSDT');
    // one filled order to find
    const found = clientOrderIdFor(`bench-found-${tag}`);
    await gateway.placeMarketOrder({ symbol: 'BTCUSDT', side: 'BUY', qty: new Decimal('0.001'), reduceOnly: false, clientOrderId: found });
    const out = {
      n,
      epoch: await timeIt(n * 3, () => epochRead(r1)),
      query_not_found: await timeIt(n, (i) => gateway.fetchOrderByClientId('BTCUSDT', clientOrderIdFor(`bench-none-${tag}-${i}`))),
      query_found: await timeIt(n, () => gateway.fetchOrderByClientId('BTCUSDT', found)),
      claim_everysec: await timeIt(n * 3, (i) => r1.set(keys.applyDedupe(`bench-es-${tag}-${i}`), 'claimed|1-0|t', 'EX', 600, 'NX')),
      claim_always: await timeIt(n * 3, (i) => r2.set(keys.applyDedupe(`bench-al-${tag}-${i}`), 'claimed|1-0|t', 'EX', 600, 'NX')),
      claim_wait: await timeIt(n * 3, async (i) => {
        await r1.set(keys.applyDedupe(`bench-w-${tag}-${i}`), 'claimed|1-0|t', 'EX', 600, 'NX');
        const acked = Number(await r1.call('WAIT', 1, 100));
        if (acked < 1) throw new Error('replica did not acknowledge');
      }),
    };
    console.log(JSON.stringify(out));
  } finally {
    r1.disconnect();
    r2.disconnect();
    rr.disconnect();
    await gateway.close();
    await paper.close();
    await replica.stop();
    await always.stop();
    await everysec.stop();
  }
}

main().catch((err: Error) => {
  console.error(err.stack ?? err.message);
  process.exit(1);
});
