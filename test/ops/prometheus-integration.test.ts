/**
 * A real Prometheus (Debian's package) scrapes a real reconcile engine (`node bin/p3.mjs run
 * reconcile-engine`, as systemd runs it) with the shipped alert rules loaded: during an injected drift
 * (the exchange snapshot moves without evidence) it sees `p34_reconcile_hold_active == 1` and the
 * P34HoldActive alert pending; after the ledger is fixed as the runbook says, it sees 0. Also: `up` is 1,
 * the engine's heartbeat is in Redis while it runs, and a clean SIGTERM stop exits 0 and deletes it.
 * Skipped (with this reason) only when `prometheus` is not installed; fails in CI without it.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, startTestRedis, waitFor, type TestRedis } from '../helpers/redis.js';
import { readHeartbeats } from '../../src/read-model/heartbeats.js';

const root = join(import.meta.dirname, '../..');
const hasPrometheus = spawnSync('prometheus', ['--version']).status === 0;

describe('prometheus installed', () => {
  it.runIf(process.env.CI)('is installed in CI (.ci/run installs Debian prometheus)', () => {
    expect(hasPrometheus).toBe(true);
  });
});

const title = hasPrometheus ? 'real Prometheus scraping the reconcile engine' : 'real Prometheus scraping the reconcile engine (SKIPPED: prometheus is not installed; apt-get install prometheus)';
describe.skipIf(!hasPrometheus)(title, () => {
  let srv: TestRedis;
  let redis: Redis;
  let engine: ChildProcess;
  let prom: ChildProcess;
  let promUrl: string;
  let dir: string;
  let refresher: NodeJS.Timeout;
  let exchangeAmt = '0.007';
  let engineLog = '';

  const writeSnapshot = async () => {
    const now = Date.now();
    await redis.hset('quantum:position:snapshot:BTCUSDT', { position_amt: exchangeAmt, side: 'LONG', entry_price: '95000', mark_price: '96000', ts_ms: String(now), ts_epoch: String(Math.floor(now / 1000)), step_size: '0.001' });
  };

  async function query(q: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]> {
    const res = await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(q)}`);
    const j = (await res.json()) as { status: string; data: { result: { metric: Record<string, string>; value: [number, string] }[] } };
    return j.status === 'success' ? j.data.result : [];
  }
  const holdValue = async () => (await query('p34_reconcile_hold_active{symbol="BTCUSDT",job="quantum-reconcile-engine"}'))[0]?.value[1];

  beforeAll(async () => {
    srv = await startTestRedis();
    redis = new Redis(srv.url);
    dir = mkdtempSync(join(tmpdir(), 'p3-prom-'));
    await writeSnapshot();
    await redis.hset('quantum:position:ledger:BTCUSDT', { ledger_amt: '0.007', ledger_side: 'LONG', ts_epoch: String(Date.now() / 1000), source: 'init', version: '1' });
    refresher = setInterval(() => void writeSnapshot().catch(() => undefined), 300);

    const metricsPort = await freePort();
    engine = spawn(process.execPath, ['bin/p3.mjs', 'run', 'reconcile-engine'], {
      cwd: root,
      env: {
        PATH: process.env.PATH ?? '',
        REDIS_URL: srv.url,
        P3_ALLOWLIST: 'BTCUSDT',
        P3_INSTANCE_ID: 'prom-it',
        P34_PROMETHEUS_PORT: String(metricsPort),
        P34_LOOP_CADENCE_SEC: '0.2',
        P34_GRACE_MS: '200',
        P34_RECONCILE_CLOSE_ENABLED: 'false',
        P34_LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    engine.stdout?.on('data', (d: Buffer) => (engineLog += d.toString()));
    engine.stderr?.on('data', (d: Buffer) => (engineLog += d.toString()));
    await waitFor(async () => (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).ok, 30_000, 100, 'engine /metrics');

    const promPort = await freePort();
    promUrl = `http://127.0.0.1:${promPort}`;
    copyFileSync(join(root, 'ops/prometheus/alerts.yml'), join(dir, 'alerts.yml'));
    writeFileSync(
      join(dir, 'prometheus.yml'),
      [
        'global: {scrape_interval: 1s, evaluation_interval: 1s}',
        'rule_files: [alerts.yml]',
        'scrape_configs:',
        '  - job_name: quantum-reconcile-engine',
        `    static_configs: [{targets: ['127.0.0.1:${metricsPort}']}]`,
        '',
      ].join('\n'),
    );
    mkdirSync(join(dir, 'data'));
    prom = spawn('prometheus', [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${promPort}`, '--storage.tsdb.retention.time=1h', '--log.level=warn'], { stdio: 'ignore' });
    await waitFor(async () => (await fetch(`${promUrl}/-/ready`)).ok, 60_000, 200, 'prometheus ready');
  }, 120_000);

  afterAll(async () => {
    clearInterval(refresher);
    prom?.kill('SIGTERM');
    if (engine && engine.exitCode === null) engine.kill('SIGKILL');
    await new Promise((r) => setTimeout(r, 200));
    redis?.disconnect();
    await srv?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('sees the hold at 1 during an injected drift and 0 after it heals', async () => {
    await waitFor(async () => (await query('up{job="quantum-reconcile-engine"}'))[0]?.value[1] === '1', 60_000, 250, 'up == 1');
    await waitFor(async () => (await holdValue()) === '0', 60_000, 250, 'hold_active == 0 before the drift');
    // The rules loaded by the real Prometheus are healthy.
    const rules = (await (await fetch(`${promUrl}/api/v1/rules`)).json()) as { data: { groups: { rules: { name: string; health: string }[] }[] } };
    const all = rules.data.groups.flatMap((g) => g.rules);
    expect(all.length).toBeGreaterThanOrEqual(10);
    expect(all.filter((r) => r.health === 'err')).toEqual([]);

    // The engine's heartbeat is in Redis while it runs.
    expect((await readHeartbeats(redis)).map((h) => `${h.name}/${h.instance}`)).toContain('reconcile-engine/prom-it');

    // Drift: the exchange position grows by 0.003 without any recorded fill (a manual trade).
    exchangeAmt = '0.010';
    await writeSnapshot();
    await waitFor(async () => (await redis.exists('quantum:reconcile:hold:BTCUSDT')) === 1, 30_000, 100, 'engine hold');
    await waitFor(async () => (await holdValue()) === '1', 60_000, 250, 'Prometheus sees hold_active == 1');
    const diff = await query('p34_reconcile_diff_amt{symbol="BTCUSDT"}');
    expect(Number(diff[0]?.value[1])).toBeCloseTo(0.003, 9);
    await waitFor(
      async () => {
        const a = (await (await fetch(`${promUrl}/api/v1/alerts`)).json()) as { data: { alerts: { labels: Record<string, string>; state: string }[] } };
        return a.data.alerts.some((x) => x.labels.alertname === 'P34HoldActive' && x.labels.symbol === 'BTCUSDT' && x.state === 'pending');
      },
      30_000,
      250,
      'P34HoldActive pending',
    );

    // Heal as the runbook says: the operator sets the ledger to the true exchange position.
    await redis.hset('quantum:position:ledger:BTCUSDT', { ledger_amt: '0.010', ledger_side: 'LONG', source: 'operator', ts_epoch: String(Date.now() / 1000) });
    await waitFor(async () => (await redis.exists('quantum:reconcile:hold:BTCUSDT')) === 0, 30_000, 100, 'engine clears its hold');
    await waitFor(async () => (await holdValue()) === '0', 60_000, 250, 'Prometheus sees hold_active == 0');
  }, 180_000);

  it('a clean SIGTERM stop exits 0 and deletes the heartbeat', async () => {
    const exited = new Promise<number | null>((r) => engine.once('exit', (code) => r(code)));
    engine.kill('SIGTERM');
    expect(await exited, engineLog).toBe(0);
    expect(await redis.exists('quantum:heartbeat:reconcile-engine:prom-it')).toBe(0);
  }, 60_000);
});
