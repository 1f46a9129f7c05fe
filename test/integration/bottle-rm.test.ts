import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LifecycleEvent } from '../../src/events/schema.js';
import { identityFrom, PIN_DEFAULT_HOSTS, startHarness, type BottleHarness } from '../support/cli-harness.js';
import { show } from '../support/workers.js';

/**
 * `bottle rm` and `cleanup --discard-older-than` on real bottles: a preserved and a failed bottle are
 * thrown away (state folder, the image only they used, `bottle.discarded`), `list` stops showing them and
 * `list --all` shows them discarded; a running bottle is refused without --force and stopped with it.
 */

let h: BottleHarness;
let manifest: string;
// A tag no other test (or session) builds: the bottles of this file are the only ones using it.
const nonce = randomBytes(6).toString('hex');
const STOPPABLE = ['bash', '-c', 'trap "exit 143" TERM; sleep 600 & wait'];

beforeAll(async () => {
  h = await startHarness();
  const bare =
    'FROM debian:bookworm-slim\n' +
    'RUN groupadd --gid 1000 node && useradd --uid 1000 --gid node --create-home --home-dir /home/node node\n' +
    `RUN echo ${nonce} > /etc/rm-test-nonce\n` +
    'USER node\nWORKDIR /home/node\n';
  manifest = h.writeManifest(
    {
      bottles: [
        { name: 'own', dockerfile: './own/Dockerfile', egress: { allow: [] }, extra_hosts: PIN_DEFAULT_HOSTS },
        { name: 'broken', dockerfile: './broken/Dockerfile', egress: { allow: [] }, extra_hosts: PIN_DEFAULT_HOSTS },
      ],
      agents: [
        { name: 'crasher', bottle: 'own', command: ['bash', '-c', 'exit 1'] },
        { name: 'sleeper', bottle: 'own', command: STOPPABLE },
        { name: 'unbuildable', bottle: 'broken', command: ['true'] },
      ],
    },
    { 'own/Dockerfile': bare, 'broken/Dockerfile': `FROM debian:bookworm-slim\nRUN echo ${nonce}; exit 3\n` },
  );
}, 120_000);

afterAll(async () => {
  await h?.cleanup();
});

const stateOf = (identity: string) => join(h.home, 'state', identity);

async function startDetached(agent: string): Promise<string> {
  const started = await h.cli(['--manifest', manifest, 'start', agent, '--detach']);
  expect(started.code, show(started)).toBe(0);
  return identityFrom(started);
}

/** A start whose image cannot build: it fails (exit 1) after printing its identity. */
async function startUnbuildable(): Promise<string> {
  const started = await h.cli(['--manifest', manifest, 'start', 'unbuildable', '--detach']);
  expect(started.code, show(started)).toBe(1);
  const identity = identityFrom({ ...started, code: 0 });
  await h.waitForEvent(identity, 'bottle.failed', 180_000);
  return identity;
}

async function imageExists(tag: string): Promise<boolean> {
  return h.docker
    .getImage(tag)
    .inspect()
    .then(
      () => true,
      () => false,
    );
}

function discardedEvent(events: LifecycleEvent[]) {
  const found = events.find((e) => e.type === 'bottle.discarded');
  expect(found, events.map((e) => e.type).join(', ')).toBeDefined();
  return found!.data as { images: string[]; images_kept: Array<{ tag: string; reason: string }> };
}

async function listed(all: boolean): Promise<Array<{ identity: string; state: string }>> {
  const run = await h.cli(['list', ...(all ? ['--all'] : []), '--format', 'json']);
  expect(run.code, show(run)).toBe(0);
  return JSON.parse(run.stdout) as Array<{ identity: string; state: string }>;
}

describe('bottle rm', () => {
  let crasher: string;
  let sleeper: string;
  let ownImage: string;

  it('discards a preserved bottle, keeping the image another bottle still uses', async () => {
    crasher = await startDetached('crasher');
    const events = await h.waitForEvent(crasher, 'bottle.preserved', 180_000);
    ownImage = (events.find((e) => e.type === 'image.built')!.data as { tag: string }).tag;
    expect(ownImage).toMatch(/^claude-bottle\/own:/);
    expect(existsSync(stateOf(crasher))).toBe(true);

    sleeper = await startDetached('sleeper');
    await h.waitForEvent(sleeper, 'agent.started');

    const unasked = await h.cli(['rm', crasher]);
    expect(unasked.code, show(unasked)).toBe(2);
    expect(unasked.stderr).toContain('no terminal to confirm the discard on; pass --yes to rm without asking');

    const run = await h.cli(['rm', crasher, '--yes']);
    expect(run.code, show(run)).toBe(0);
    expect(run.stdout).toContain(`discarded ${crasher}`);
    const data = discardedEvent(await h.log.read(crasher));
    expect(data.images).toEqual([]);
    expect(data.images_kept).toContainEqual({ tag: ownImage, reason: 'another bottle uses it' });
    expect(existsSync(stateOf(crasher))).toBe(false);
    expect(await imageExists(ownImage)).toBe(true);

    expect((await listed(false)).map((b) => b.identity)).not.toContain(crasher);
    expect(await listed(true)).toContainEqual(expect.objectContaining({ identity: crasher, state: 'discarded' }));
    const again = await h.cli(['rm', crasher, '--yes']);
    expect(again.code, show(again)).toBe(1);
    expect(again.stderr).toContain(`${crasher} is discarded: there is nothing left to discard`);
  }, 400_000);

  it('refuses a running bottle without --force, and stops then discards it with --force', async () => {
    const refused = await h.cli(['rm', sleeper, '--yes']);
    expect(refused.code, show(refused)).toBe(2);
    expect(refused.stderr.trim().split('\n')).toHaveLength(1);
    expect(refused.stderr).toContain(`${sleeper} is running; stop it first`);
    expect((await h.log.read(sleeper)).map((e) => e.type)).not.toContain('bottle.discard_requested');

    const forced = await h.cli(['rm', sleeper, '--yes', '--force']);
    expect(forced.code, show(forced)).toBe(0);
    const types = (await h.log.read(sleeper)).map((e) => e.type);
    expect(types.indexOf('bottle.preserved')).toBeLessThan(types.indexOf('bottle.discard_requested'));
    expect(types.at(-1)).toBe('bottle.discarded');
    // The last bottle that used the image is gone: so is the image.
    expect(discardedEvent(await h.log.read(sleeper)).images).toEqual([ownImage]);
    expect(await imageExists(ownImage)).toBe(false);
    expect(existsSync(stateOf(sleeper))).toBe(false);
  }, 300_000);

  it('discards a failed bottle', async () => {
    const failed = await startUnbuildable();
    expect((await listed(false)).map((b) => b.identity)).toContain(failed);
    const run = await h.cli(['rm', failed, '--yes']);
    expect(run.code, show(run)).toBe(0);
    expect((await h.log.read(failed)).at(-1)?.type).toBe('bottle.discarded');
    expect(existsSync(stateOf(failed))).toBe(false);
    expect((await listed(false)).map((b) => b.identity)).not.toContain(failed);
    expect(await listed(true)).toContainEqual(expect.objectContaining({ identity: failed, state: 'discarded' }));
  }, 300_000);
});

describe('bottle cleanup --discard-older-than', () => {
  it('lists the preserved and failed bottles older than the duration, and --dry-run discards none', async () => {
    const failed = await startUnbuildable();
    await new Promise((r) => setTimeout(r, 1500));

    const old = await h.cli(['cleanup', '--discard-older-than', '1s', '--dry-run']);
    expect(old.code, show(old)).toBe(0);
    expect(old.stdout).toMatch(new RegExp(`would discard ${failed} \\(failed \\d+s ago\\)`));
    const recent = await h.cli(['cleanup', '--discard-older-than', '7d', '--dry-run']);
    expect(recent.code, show(recent)).toBe(0);
    expect(recent.stdout).toContain('no preserved or failed bottle is older than 7d');
    const types = (await h.log.read(failed)).map((e) => e.type);
    expect(types).not.toContain('bottle.discard_requested');
    expect(existsSync(stateOf(failed))).toBe(true);

    const bad = await h.cli(['cleanup', '--discard-older-than', 'a week', '--dry-run']);
    expect(bad.code, show(bad)).toBe(2);
    expect(bad.stderr).toContain('--discard-older-than takes a duration like 7d');
  }, 300_000);
});
