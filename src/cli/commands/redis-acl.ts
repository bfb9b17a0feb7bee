/**
 * `p3 redis-acl [--out FILE] [--admin]`: writes the Redis ACL users of the system (docs/architecture.md#least-privilege-and-signed-permits; rules in
 * src/acl/users.ts) in Redis's ACL file format, passwords from `P3_REDIS_PASSWORD_<USER>` written hashed.
 * Without `--out` the file goes to stdout. Exit 2 naming the variable when a password is missing.
 */
import { writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { renderAclFile, usersToWrite } from '../../acl/render.js';

/** Registers `p3 redis-acl`. */
export function registerRedisAclCommand(program: Command): void {
  program
    .command('redis-acl')
    .description('write the Redis ACL file: one least-privilege user per component, default user off (see ops/redis/README.md)')
    .option('--out <file>', 'write to FILE (mode 0640) instead of stdout')
    .option('--admin', 'also write p3-admin (all rights; for password rotation and ACL LOAD), password P3_REDIS_PASSWORD_ADMIN')
    .addHelpText('after', `\nPasswords (required, 16+ characters, never stored: written as SHA-256):\n${usersToWrite({ admin: true }).map((u) => `  ${u.passwordEnv.padEnd(28)} ${u.user}: ${u.purpose}`).join('\n')}\n`)
    .action((o: { out?: string; admin?: boolean }) => {
      const text = renderAclFile(process.env, { admin: o.admin });
      if (!o.out) return void process.stdout.write(text);
      writeFileSync(o.out, text, { mode: 0o640 });
      process.stderr.write(`p3: wrote ${text.trim().split('\n').length} users to ${o.out} (load it with aclfile ${o.out} in redis.conf, or ACL LOAD)\n`);
    });
}
