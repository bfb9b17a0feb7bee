/**
 * `p3 plan-stream check|repair`: the plan stream's damage that Redis ACLs cannot prevent (a producer's
 * XADD with MAXLEN/MINID deleting unread plans, a planted largest id blocking every XADD; see
 * src/adapters/redis/plan-stream-health.ts).
 * - `check` (any user that reads the stream, e.g. p3-operator): prints the findings; exit 1 when damaged.
 * - `repair` (REDIS_URL of p3-admin: XDEL, XSETID, XGROUP SETID): deletes planted ids, sets the stream's
 *   last id back and acknowledges lost plans, once every consumer group has read every entry; exit 1 when
 *   it could not (the reason is printed: start the consumers, wait, run again).
 * Lost plans stay lost: strategies resubmit them (docs/runbook.md, "Plan stream damaged").
 */
import type { Command } from 'commander';

const withCliRedis: typeof import('../redis.js').withCliRedis = async (fn) => (await import('../redis.js')).withCliRedis(fn);

/** Registers `p3 plan-stream`. */
export function registerPlanStreamCommands(program: Command): void {
  const ps = program.command('plan-stream').description('damage of quantum:stream:apply.plan that Redis ACLs cannot prevent: check, repair (docs/runbook.md)');
  ps.command('check')
    .description('report planted ids and plans deleted before every group read them (exit 1 when damaged)')
    .action(async () => {
      const { planStreamDamage } = await import('../../adapters/redis/plan-stream-health.js');
      const found = await withCliRedis((redis) => planStreamDamage(redis, Date.now()));
      for (const d of found) process.stdout.write(`FAIL ${d.kind}: ${d.detail}\n`);
      if (found.length === 0) process.stdout.write('OK quantum:stream:apply.plan: no planted id, no plan deleted before every group read it\n');
      else process.exitCode = 1;
    });
  ps.command('repair')
    .description('as p3-admin: delete planted ids, set the last id back, acknowledge lost plans (exit 1 when not possible yet)')
    .action(async () => {
      const { repairPlanStream } = await import('../../adapters/redis/plan-stream-health.js');
      const r = await withCliRedis((redis) => repairPlanStream(redis, Date.now()));
      if (!r.repaired) {
        process.stdout.write(`not repaired: ${r.reason ?? '?'}\n`);
        if (!/nothing to repair/.test(r.reason ?? '')) process.exitCode = 1;
        return;
      }
      process.stdout.write(`repaired: deleted ${r.deleted.length} planted entr${r.deleted.length === 1 ? 'y' : 'ies'}${r.deleted.length ? ` (${r.deleted.join(', ')})` : ''}; last id ${r.lastId}; groups reset: ${r.groupsReset.join(', ')}\n`);
      process.stdout.write('then: review which plans got no result (p3 plan show), let strategies resubmit, and DEL quantum:apply:plan_stream_damage as p3-operator\n');
    });
}
