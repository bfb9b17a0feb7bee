/**
 * The governor issues an ALLOW in one script (`governorIssue-3.lua`): the rate token and the
 * write-once permit together, built from the Lua fragments it shares with `tokenBucket-2.lua` and
 * `permitWrite-1.lua` (`--- @include "includes/<name>"`, expanded by scripts/loader.ts).
 */
import { describe, expect, it } from 'vitest';
import { expandIncludes, scriptDefs } from '../../src/adapters/redis/scripts/index.js';
import { CHANNELS, keys } from '../../src/adapters/redis/keys.js';
import { issueAllow } from '../../src/services/governor/rate.js';
import type { PermitFields } from '../../src/domain/permits.js';
import { useTestRedis, waitFor } from '../helpers/redis.js';

const h = useTestRedis();
const permit = (planId: string) => ({ plan_id: planId, decision: 'ALLOW', reason: 'ok', sig: 'f'.repeat(64) }) as unknown as PermitFields & { sig: string };
const rate = (burst: number) => ({ globalPerMin: 1, globalBurst: burst, symbolPerMin: 1, symbolBurst: 100 });

describe('Lua includes', () => {
  it('expands each fragment once, recursively, and refuses an unknown one', () => {
    const files: Record<string, string> = { 'includes/a': 'A\n--- @include "includes/b"', 'includes/b': 'B' };
    const read = (p: string) => {
      const f = files[p];
      if (f === undefined) throw new Error(`no ${p}`);
      return f;
    };
    expect(expandIncludes('--- @include "includes/a"\n--- @include "includes/b"\nreturn 1', read)).toBe('A\nB\n-- (includes/b included above)\nreturn 1');
    expect(() => expandIncludes('--- @include "includes/zzz"', read)).toThrow(/no includes\/zzz/);
  });

  it('every script is loaded with its fragments expanded (no include line is left for Redis)', () => {
    for (const d of scriptDefs().values()) expect(d.lua, d.name).not.toMatch(/^--- @include/m);
    expect(scriptDefs().get('governorIssue')?.lua).toContain('local function takeTokens');
    expect(scriptDefs().get('tokenBucket')?.lua).toContain('local function takeTokens');
    expect(scriptDefs().get('permitWrite')?.lua).toContain('local function writePermit');
  });
});

describe('governorIssue-3.lua', () => {
  it('takes the token and writes the permit (with its TTL, published) in one step', async () => {
    const sub = h.redis.duplicate();
    const got: string[] = [];
    await sub.subscribe(CHANNELS.permitWritten);
    sub.on('message', (_c: string, m: string) => got.push(m));
    try {
      await h.redis.del(keys.governorRateBucket('global'), keys.governorRateBucket('GIUSDT'));
      expect(await issueAllow(h.redis, 'GIUSDT', permit('gi-1'), 60, rate(2))).toEqual({ kind: 'written' });
      expect(await h.redis.hgetall(keys.permitGovernor('gi-1'))).toMatchObject({ decision: 'ALLOW', plan_id: 'gi-1' });
      expect(await h.redis.ttl(keys.permitGovernor('gi-1'))).toBeGreaterThan(50);
      await waitFor(() => got.includes(keys.permitGovernor('gi-1')));
      expect(Number(await h.redis.hget(keys.governorRateBucket('global'), 'tokens'))).toBeCloseTo(1, 3);
    } finally {
      sub.disconnect();
    }
  });

  it('an existing permit: nothing taken, nothing written', async () => {
    const before = await h.redis.hget(keys.governorRateBucket('global'), 'tokens');
    await h.redis.hset(keys.permitGovernor('gi-2'), 'decision', 'DENY');
    expect(await issueAllow(h.redis, 'GIUSDT', permit('gi-2'), 60, rate(2))).toEqual({ kind: 'exists' });
    expect(await h.redis.hget(keys.permitGovernor('gi-2'), 'decision')).toBe('DENY');
    expect(Number(await h.redis.hget(keys.governorRateBucket('global'), 'tokens'))).toBeCloseTo(Number(before), 2);
  });

  it('an empty bucket: refused with the token counts, no permit written', async () => {
    await h.redis.del(keys.governorRateBucket('global'), keys.governorRateBucket('GIUSDT'));
    expect(await issueAllow(h.redis, 'GIUSDT', permit('gi-3'), 60, rate(1))).toEqual({ kind: 'written' });
    const r = await issueAllow(h.redis, 'GIUSDT', permit('gi-4'), 60, rate(1));
    expect(r).toMatchObject({ kind: 'refused', reason: 'rate_limited_global' });
    expect(await h.redis.exists(keys.permitGovernor('gi-4'))).toBe(0);
    await h.redis.del(keys.governorRateBucket('global'));
    const s = await issueAllow(h.redis, 'GISYM', permit('gi-5'), 60, { globalPerMin: 1, globalBurst: 100, symbolPerMin: 1, symbolBurst: 0.5 });
    expect(s).toMatchObject({ kind: 'refused', reason: 'rate_limited_symbol' });
    expect(await h.redis.exists(keys.permitGovernor('gi-5'))).toBe(0);
  });
});
