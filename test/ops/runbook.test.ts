/**
 * The runbook stays true: every runbook link of the alert rules points at an existing section, it covers
 * the situations an on-call operator meets, every `p3 <command> [<subcommand>]` it shows exists in the CLI (from
 * `p3 --help`), and it never tells anyone to use KEYS.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '../..');
const runbook = readFileSync(join(root, 'docs/runbook.md'), 'utf8');
const alerts = readFileSync(join(root, 'ops/prometheus/alerts.yml'), 'utf8');

/** GitHub-style anchor of a heading. */
const anchor = (h: string) =>
  h
    .trim()
    .toLowerCase()
    .replace(/[^a-z0-9 -]/g, '')
    .replace(/ /g, '-');
const anchors = new Set([...runbook.matchAll(/^#{1,6} (.+)$/gm)].map((m) => anchor(m[1] as string)));

function help(...args: string[]): string {
  const r = spawnSync(process.execPath, ['bin/p3.mjs', ...args, '--help'], { cwd: root, encoding: 'utf8', env: { PATH: process.env.PATH ?? '' }, timeout: 60_000 });
  return r.stdout;
}
/** Command names listed under "Commands:" in a commander help text. */
const commandsIn = (text: string) => new Set([...(text.split(/^Commands:$/m)[1] ?? '').matchAll(/^ {2}([a-z][\w-]*)/gm)].map((m) => m[1] as string));

describe('docs/runbook.md', () => {
  it('has every section the alerts link to', () => {
    const links = [...alerts.matchAll(/docs\/runbook\.md#([a-z0-9-]+)/g)].map((m) => m[1] as string);
    expect(links.length).toBeGreaterThan(10);
    expect([...new Set(links)].filter((l) => !anchors.has(l))).toEqual([]);
  });

  it('covers hold stuck, side mismatch, rate-limit ban, Redis down, exchange down, halt/resume, ledger by hand', () => {
    for (const a of ['hold-stuck', 'side-mismatch', 'rate-limit-ban', 'redis-down', 'exchange-down', 'halt-and-resume-trading', 'fix-a-ledger-by-hand']) expect(anchors).toContain(a);
    for (const cmd of ['redis-cli SETEX quantum:reconcile:hold:BTCUSDT', 'redis-cli DEL quantum:reconcile:hold:BTCUSDT', 'HSET quantum:position:ledger:BTCUSDT ledger_amt', 'HGETALL quantum:reconcile:state:BTCUSDT', 'XREVRANGE quantum:stream:reconcile.events + - COUNT 5', "--scan --pattern 'quantum:reconcile:hold:*'"]) {
      expect(runbook).toContain(cmd);
    }
    expect(runbook).not.toMatch(/redis-cli\s+KEYS/i);
  });

  it('every p3 command it shows exists', () => {
    const top = commandsIn(help());
    expect(top).toContain('doctor');
    const used = [...runbook.matchAll(/(?:^|[\s`(])p3 ([a-z][\w-]*)(?: ([a-z][\w-]*))?/gm)].map((m) => [m[1] as string, m[2]] as const);
    const missing = new Set<string>();
    const subs = new Map<string, Set<string>>();
    for (const [cmd, sub] of used) {
      if (!top.has(cmd)) {
        missing.add(cmd);
        continue;
      }
      if (!subs.has(cmd)) subs.set(cmd, commandsIn(help(cmd)));
      const known = subs.get(cmd) as Set<string>;
      if (known.size > 0 && sub && !known.has(sub)) missing.add(`${cmd} ${sub}`);
    }
    expect([...missing]).toEqual([]);
  }, 120_000);
});
