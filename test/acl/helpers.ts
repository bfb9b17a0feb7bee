/**
 * A private redis-server loaded with the ACL file `p3 redis-acl` generates (random passwords), and
 * helpers to connect as each user and read Redis's ACL LOG.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { createRedis } from '../../src/adapters/redis/client.js';
import { renderAclFile, usersToWrite } from '../../src/acl/render.js';
import { startTestRedis, type TestRedis } from '../helpers/redis.js';

/** A Redis with the generated users. */
export interface AclRedis {
  srv: TestRedis;
  /** The generated ACL file's text. */
  aclText: string;
  /** Password of each user (`p3-apply` → ...). */
  passwords: Record<string, string>;
  /** `redis://<user>:<password>@127.0.0.1:<port>` */
  urlFor(user: string): string;
  /** A connection (scripts loaded) as `user`. */
  connect(user: string): Redis;
  /** ACL LOG entries (read as p3-admin), newest first. */
  aclLog(): Promise<Array<Record<string, string>>>;
  stop(): Promise<void>;
}

/** Generates the ACL file (with p3-admin) and starts redis-server with `--aclfile`. */
export async function startAclRedis(): Promise<AclRedis> {
  const dir = mkdtempSync(join(tmpdir(), 'p3-acl-'));
  const env: Record<string, string> = {};
  const passwords: Record<string, string> = {};
  for (const u of usersToWrite({ admin: true })) {
    // a character that needs URL-encoding, as real passwords may have
    const pw = `${randomBytes(12).toString('hex')}/+`;
    env[u.passwordEnv] = pw;
    passwords[u.user] = pw;
  }
  const aclText = renderAclFile(env, { admin: true });
  const file = join(dir, 'users.acl');
  writeFileSync(file, aclText);
  const srv = await startTestRedis({ args: ['--aclfile', file], probeAuth: { user: 'p3-admin', password: passwords['p3-admin']! } });
  const conns: Redis[] = [];
  const urlFor = (user: string) => `redis://${encodeURIComponent(user)}:${encodeURIComponent(passwords[user] ?? '')}@127.0.0.1:${srv.port}`;
  const connect = (user: string) => {
    const c = createRedis(urlFor(user), { name: `test:${user}` });
    conns.push(c);
    return c;
  };
  const admin = connect('p3-admin');
  return {
    srv,
    aclText,
    passwords,
    urlFor,
    connect,
    async aclLog() {
      const raw = (await admin.call('ACL', 'LOG', '1000')) as Array<Array<string | number>>;
      return raw.map((e) => {
        const o: Record<string, string> = {};
        for (let i = 0; i + 1 < e.length; i += 2) o[String(e[i])] = String(e[i + 1]);
        return o;
      });
    },
    async stop() {
      for (const c of conns) c.disconnect();
      await srv.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
