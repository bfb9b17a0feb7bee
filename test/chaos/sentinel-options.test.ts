/**
 * `p3 chaos --sentinel` options (harness/chaos/options.ts): `sentinel_failover` joins the default set only with
 * `--sentinel`, and naming it without `--sentinel` is a usage error (exit 2 naming `--faults`).
 */
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config/env.js';
import { DEFAULT_CHAOS_FAULTS, parseChaosOptions } from '../../harness/chaos/options.js';
import { readFileSync } from 'node:fs';
import { sentinelConf, CHAOS_MASTER_NAME, CHAOS_MIN_REPLICAS_TO_WRITE, CHAOS_NODE_ARGS, CHAOS_REPLICAS } from '../../harness/chaos/sentinel.js';

describe('p3 chaos --sentinel options', () => {
  it('without --sentinel: no sentinel_failover, not even with --faults all', () => {
    expect(DEFAULT_CHAOS_FAULTS).not.toContain('sentinel_failover');
    const o = parseChaosOptions({}, () => 1);
    expect(o.sentinel).toBe(false);
    expect(o.faults).not.toContain('sentinel_failover');
    expect(parseChaosOptions({ faults: 'all' }, () => 1).faults).not.toContain('sentinel_failover');
  });
  it('with --sentinel: the default set plus sentinel_failover; all includes it', () => {
    const o = parseChaosOptions({ sentinel: true }, () => 1);
    expect(o.sentinel).toBe(true);
    expect(o.faults).toEqual([...DEFAULT_CHAOS_FAULTS, 'sentinel_failover']);
    expect(parseChaosOptions({ sentinel: true, faults: 'all' }, () => 1).faults).toContain('sentinel_failover');
    expect(parseChaosOptions({ sentinel: true, faults: 'sentinel_failover,redis_kill' }, () => 1).faults).toEqual(['sentinel_failover', 'redis_kill']);
  });
  it('sentinel_failover without --sentinel is a usage error naming --faults', () => {
    expect(() => parseChaosOptions({ faults: 'sentinel_failover,redis_kill' }, () => 1)).toThrow(ConfigError);
    expect(() => parseChaosOptions({ faults: 'sentinel_failover' }, () => 1)).toThrow(/--faults: sentinel_failover needs --sentinel/);
  });
  it('data nodes: two replicas, min-replicas-to-write = every replica, no diskless-sync delay (chaos and ops/redis/replica.conf)', () => {
    // regressions of the --sentinel runs: with fewer required replicas than replicas the old master took writes a
    // SENTINEL FAILOVER then discarded (lost results); with the default 5 s delay a restarted master refused every
    // write for 5 s before syncing its replica (6 of 45 plans accepted in a failover-heavy run)
    const arg = (name: string) => CHAOS_NODE_ARGS[CHAOS_NODE_ARGS.indexOf(name) + 1];
    expect(CHAOS_REPLICAS).toBe(2);
    expect(CHAOS_MIN_REPLICAS_TO_WRITE).toBe(CHAOS_REPLICAS);
    expect(arg('--min-replicas-to-write')).toBe(String(CHAOS_REPLICAS));
    expect(arg('--repl-diskless-sync-delay')).toBe('0');
    const conf = readFileSync(new URL('../../ops/redis/replica.conf', import.meta.url), 'utf8');
    expect(conf).toMatch(/^min-replicas-to-write 1$/m);
    expect(conf).toMatch(/^repl-diskless-sync-delay 0$/m);
    expect(readFileSync(new URL('../../ops/redis/sentinel.conf', import.meta.url), 'utf8')).toMatch(/^sentinel monitor p3-redis \S+ 6379 2$/m);
  });
  it('--claim-durability: passed to the apply layers; replica-wait needs --sentinel; a bad mode names the option', () => {
    expect(parseChaosOptions({}, () => 1).claimDurability).toBeUndefined();
    expect(parseChaosOptions({ sentinel: true, claimDurability: 'replica-wait' }, () => 1).claimDurability).toBe('replica-wait');
    expect(parseChaosOptions({ claimDurability: 'fsync-always' }, () => 1).claimDurability).toBe('fsync-always');
    expect(() => parseChaosOptions({ claimDurability: 'replica-wait' }, () => 1)).toThrow(/--claim-durability: replica-wait needs --sentinel/);
    expect(() => parseChaosOptions({ claimDurability: 'maybe' }, () => 1)).toThrow(/--claim-durability/);
  });
  it('the sentinels monitor the master with a quorum of 2', () => {
    expect(sentinelConf(26379, '/tmp/x', 6380)).toMatch(new RegExp(`^sentinel monitor ${CHAOS_MASTER_NAME} 127\\.0\\.0\\.1 6380 2$`, 'm'));
  });
});
