/**
 * The permit notification channel (`quantum:notify:permit`). Only the permit issuers publish it
 * (through permitWrite-1.lua, whose PUBLISH is checked against the user's rules), only the apply layer
 * subscribes; nobody else may publish or subscribe to it, nor to any other channel.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHANNELS, keys } from '../../src/adapters/redis/keys.js';
import { permitWrite } from '../../src/adapters/redis/scripts/index.js';
import { startAclRedis, type AclRedis } from './helpers.js';

let acl: AclRedis;
beforeAll(async () => {
  acl = await startAclRedis();
});
afterAll(async () => {
  await acl?.stop();
});

const NOPERM = /NOPERM/;

describe('permit notification channel', () => {
  it('the apply layer subscribes and gets what the governor and the brain publish with their permits', async () => {
    const sub = acl.connect('p3-apply');
    const got: string[] = [];
    sub.on('message', (_c: string, m: string) => got.push(m));
    await sub.subscribe(CHANNELS.permitWritten);
    const gov = acl.connect('p3-governor');
    const brain = acl.connect('p3-brain');
    expect(await permitWrite(gov, keys.permitGovernor('n1'), 60, { decision: 'ALLOW' })).toBe('written');
    expect(await permitWrite(brain, keys.permitP33('n1'), 60, { decision: 'ALLOW' })).toBe('written');
    for (let i = 0; i < 100 && got.length < 2; i++) await new Promise((r) => setTimeout(r, 20));
    expect(got).toEqual([keys.permitGovernor('n1'), keys.permitP33('n1')]);
    sub.disconnect();
  });

  it('no one else publishes or subscribes to it, and no user has any other channel', async () => {
    for (const user of ['p3-strategy', 'p3-engine', 'p3-apply', 'p3-operator', 'p3-console']) {
      await expect(acl.connect(user).publish(CHANNELS.permitWritten, keys.permitGovernor('x')), user).rejects.toThrow(NOPERM);
    }
    for (const user of ['p3-strategy', 'p3-engine', 'p3-governor', 'p3-brain', 'p3-operator', 'p3-console']) {
      await expect(acl.connect(user).subscribe(CHANNELS.permitWritten), user).rejects.toThrow(NOPERM);
    }
    for (const user of ['p3-governor', 'p3-brain']) await expect(acl.connect(user).publish('quantum:other', 'x'), user).rejects.toThrow(NOPERM);
    await expect(acl.connect('p3-apply').subscribe('quantum:other')).rejects.toThrow(NOPERM);
    await expect(acl.connect('p3-apply').psubscribe('quantum:*')).rejects.toThrow(NOPERM);
  });
});
