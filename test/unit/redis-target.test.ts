/**
 * `REDIS_URL` + Sentinel configuration (src/config/redis.ts): parsed with zod, a bad value is a
 * ConfigError naming the variable (exit 2), and the env round trip used by `p3 chaos --sentinel`.
 */
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config/env.js';
import { describeRedisTarget, parseRedisTarget, redisTargetEnv } from '../../src/config/redis.js';
import { sentinelOptions } from '../../src/adapters/redis/client.js';

const variableOf = (env: Record<string, string>): string => {
  try {
    parseRedisTarget(env);
  } catch (err) {
    if (err instanceof ConfigError) return err.variable;
    throw err;
  }
  return 'none';
};

describe('parseRedisTarget', () => {
  it('REDIS_URL alone: no sentinel (default URL when unset)', () => {
    expect(parseRedisTarget({})).toEqual({ url: 'redis://127.0.0.1:6379', sentinel: null });
    expect(parseRedisTarget({ REDIS_URL: 'redis://u:p@h:1/2' })).toEqual({ url: 'redis://u:p@h:1/2', sentinel: null });
  });
  it('REDIS_SENTINELS + REDIS_SENTINEL_NAME: the sentinels in order, credentials at the sentinels', () => {
    const t = parseRedisTarget({
      REDIS_URL: 'redis://p3-apply:apply-pw-0123@ignored:6379/0',
      REDIS_SENTINELS: ' 10.0.0.1:26379, sentinel-b.local:26380,[::1]:26381 ',
      REDIS_SENTINEL_NAME: 'p3-master',
      REDIS_SENTINEL_PASSWORD: 'spw',
    });
    expect(t.sentinel).toEqual({
      sentinels: [
        { host: '10.0.0.1', port: 26379 },
        { host: 'sentinel-b.local', port: 26380 },
        { host: '::1', port: 26381 },
      ],
      name: 'p3-master',
      password: 'spw',
    });
    expect(parseRedisTarget(redisTargetEnv(t))).toEqual(t);
    expect(describeRedisTarget(t)).not.toContain('apply-pw-0123');
    expect(describeRedisTarget(t)).toContain('p3-master@10.0.0.1:26379');
    const o = sentinelOptions(t.sentinel, t.url);
    expect(o.name).toBe('p3-master');
    expect(o.sentinels).toHaveLength(3);
    expect(o.failoverDetector).toBe(true);
    expect(o.sentinelPassword).toBe('spw');
  });
  it('bad values name their variable', () => {
    expect(variableOf({ REDIS_URL: 'http://x' })).toBe('REDIS_URL');
    expect(variableOf({ REDIS_SENTINELS: 'host-without-port', REDIS_SENTINEL_NAME: 'm' })).toBe('REDIS_SENTINELS');
    expect(variableOf({ REDIS_SENTINELS: 'h:0', REDIS_SENTINEL_NAME: 'm' })).toBe('REDIS_SENTINELS');
    expect(variableOf({ REDIS_SENTINELS: 'h:70000', REDIS_SENTINEL_NAME: 'm' })).toBe('REDIS_SENTINELS');
    expect(variableOf({ REDIS_SENTINELS: 'h:1,h:1', REDIS_SENTINEL_NAME: 'm' })).toBe('REDIS_SENTINELS');
    expect(variableOf({ REDIS_SENTINELS: ',', REDIS_SENTINEL_NAME: 'm' })).toBe('REDIS_SENTINELS');
    expect(variableOf({ REDIS_SENTINELS: 'h:1' })).toBe('REDIS_SENTINEL_NAME');
    expect(variableOf({ REDIS_SENTINELS: 'h:1', REDIS_SENTINEL_NAME: 'bad name' })).toBe('REDIS_SENTINEL_NAME');
    expect(variableOf({ REDIS_SENTINEL_NAME: 'm' })).toBe('REDIS_SENTINELS');
    expect(variableOf({ REDIS_SENTINEL_PASSWORD: 'x' })).toBe('REDIS_SENTINELS');
  });
});
