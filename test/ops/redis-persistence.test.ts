/**
 * ops/redis/p3-persistence.conf (docs/architecture.md#exactly-once-execution): a real redis-server started with it runs with every directive
 * it lists, and `p3 chaos` runs its Redis with the same persistence (harness/chaos/redis.ts), so the figures in
 * docs/reliability.md are measured under the configuration the project ships.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createRedis } from '../../src/adapters/redis/client.js';
import { durableRedisArgs } from '../../harness/chaos/redis.js';
import { startTestRedis } from '../helpers/redis.js';

const file = join(import.meta.dirname, '../../ops/redis/p3-persistence.conf');
const directives = readFileSync(file, 'utf8')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l !== '' && !l.startsWith('#'))
  .map((l) => {
    const [k, ...rest] = l.split(/\s+/);
    return [k as string, rest.join(' ').replace(/^"(.*)"$/, '$1')] as const;
  });

describe('ops/redis/p3-persistence.conf', () => {
  it('lists the persistence the services need', () => {
    expect(Object.fromEntries(directives)).toMatchObject({ appendonly: 'yes', appendfsync: 'everysec', 'aof-load-truncated': 'yes', 'maxmemory-policy': 'noeviction', save: '' });
  });

  it('a redis-server started with it (include) runs with every directive', async () => {
    const srv = await startTestRedis({ args: ['--include', file] });
    const conn = createRedis(srv.url, { name: 'test-persistence' });
    try {
      for (const [k, want] of directives) {
        const got = (await conn.call('CONFIG', 'GET', k)) as string[];
        expect([k, got[1]]).toEqual([k, want]);
      }
    } finally {
      conn.disconnect();
      await srv.stop();
    }
  });

  it('p3 chaos runs its Redis with the same persistence', () => {
    const args = durableRedisArgs(6390, '/tmp/x');
    for (const k of ['appendonly', 'appendfsync', 'aof-load-truncated', 'maxmemory-policy', 'save']) {
      const i = args.indexOf(`--${k}`);
      expect([k, i >= 0 ? args[i + 1] : undefined]).toEqual([k, Object.fromEntries(directives)[k]]);
    }
  });
});
