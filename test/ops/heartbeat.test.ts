/**
 * Heartbeats against a real private Redis: the hash carries every field with a TTL, `readHeartbeats`
 * finds it with SCAN, a clean stop deletes it, a frozen instance expires, and `startServices` /
 * `stopServices` beat for a service that exposes its Redis connection.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import { startTestRedis, waitFor, type TestRedis } from '../helpers/redis.js';
import { livenessReport, readHeartbeats } from '../../src/read-model/heartbeats.js';
import { startHeartbeat } from '../../src/host/heartbeat.js';
import { P3_VERSION } from '../../src/host/version.js';
import { startServices, stopServices } from '../../src/host/lifecycle.js';
import type { Service } from '../../src/host/service.js';
import { keys } from '../../src/adapters/redis/keys.js';

let srv: TestRedis;
let redis: Redis;

beforeAll(async () => {
  srv = await startTestRedis();
  redis = new Redis(srv.url);
});

afterAll(async () => {
  redis.disconnect();
  await srv.stop();
});

describe('heartbeat', () => {
  it('writes every field with a TTL, beats again, and deletes the hash on stop', async () => {
    const hb = await startHeartbeat(redis, { name: 'governor', instance: 'g1', intervalMs: 50, ttlMs: 2000 });
    expect(hb.key).toBe(keys.heartbeat('governor', 'g1'));
    const h = await redis.hgetall(hb.key);
    expect(h).toMatchObject({ name: 'governor', instance: 'g1', version: P3_VERSION, pid: String(process.pid) });
    expect(Number(h.started_ms)).toBeGreaterThan(0);
    expect(P3_VERSION).not.toBe('unknown');
    const ttl = await redis.pttl(hb.key);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(2000);
    const first = Number(h.last_beat_ms);
    await waitFor(async () => Number(await redis.hget(hb.key, 'last_beat_ms')) > first, 5000, 20, 'a second beat');
    expect(await redis.hget(hb.key, 'started_ms')).toBe(h.started_ms);
    await hb.stop();
    expect(await redis.exists(hb.key)).toBe(0);
  });

  it('refuses a TTL that does not exceed the interval', async () => {
    await expect(startHeartbeat(redis, { name: 'x', intervalMs: 1000, ttlMs: 1000 })).rejects.toThrow(/ttlMs/);
  });

  it('readHeartbeats + livenessReport name alive, missing and stale services', async () => {
    const a = await startHeartbeat(redis, { name: 'reconcile-engine', instance: 'r1', intervalMs: 1000, ttlMs: 5000 });
    const b = await startHeartbeat(redis, { name: 'reconcile-engine', instance: 'r2', intervalMs: 1000, ttlMs: 5000 });
    await redis.multi().hset(keys.heartbeat('governor', 'old'), { name: 'governor', instance: 'old', last_beat_ms: String(Date.now() - 60_000) }).pexpire(keys.heartbeat('governor', 'old'), 5000).exec();
    const hbs = await readHeartbeats(redis);
    expect(hbs.map((h) => `${h.name}/${h.instance}`)).toEqual(['governor/old', 'reconcile-engine/r1', 'reconcile-engine/r2']);
    const rep = livenessReport(hbs, ['governor', 'position-state-brain', 'reconcile-engine', 'apply-layer'], Date.now());
    expect(rep.alive['reconcile-engine']?.map((h) => h.instance)).toEqual(['r1', 'r2']);
    expect(rep.missing).toEqual(['governor', 'position-state-brain', 'apply-layer']);
    expect(rep.stale.map((h) => h.instance)).toEqual(['old']);
    await a.stop();
    await b.stop();
    await redis.del(keys.heartbeat('governor', 'old'));
  });

  it('startServices beats for a service exposing its redis; stopServices deletes the heartbeat', async () => {
    let started = false;
    const svc: Service = {
      name: 'position-state-brain',
      registry: new Registry(),
      metricsPort: 0,
      redis,
      instanceId: 'psb-test',
      start: async () => {
        started = true;
      },
      stop: async () => undefined,
      readiness: () => ({ ok: started }),
    };
    const running = await startServices([svc]);
    const key = keys.heartbeat('position-state-brain', 'psb-test');
    expect(await redis.hget(key, 'name')).toBe('position-state-brain');
    expect(running[0]?.heartbeat?.key).toBe(key);
    // The same connection feeds the dead-letter gauge, read at scrape time.
    await redis.xadd('quantum:stream:apply.plan.dlq', '*', 'reason', 'bad_mac');
    await redis.xadd('quantum:stream:apply.plan.dlq', '*', 'reason', 'bad_mac');
    const text = await svc.registry.metrics();
    expect(text).toContain('p3_dlq_entries{stream="quantum:stream:apply.plan.dlq"} 2');
    expect(text).toContain('p3_dlq_entries{stream="quantum:stream:reconcile.close.dlq"} 0');
    expect(text).toMatch(/^p3_exchange_backoff_remaining_seconds 0$/m);
    await redis.set('quantum:exchange:backoff_until', String(Date.now() + 600_000));
    const secs = Number(/^p3_exchange_backoff_remaining_seconds\S* (\S+)$/m.exec(await svc.registry.metrics())?.[1]);
    expect(secs).toBeGreaterThan(590);
    expect(secs).toBeLessThanOrEqual(600);
    await stopServices(running);
    expect(await redis.exists(key)).toBe(0);
  });
});
