import { stampEvents } from '../../src/event-store/log.js';
import { foldEvent, initialBottleState } from '../../src/machines/index.js';
import { fakePlan } from '../support/fake-plan.js';
import { lstatSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PIN_DEFAULT_HOSTS, startHarness, type BottleHarness } from '../support/cli-harness.js';

/**
 * An identity typed by a user is refused (exit 2) before it builds a path, a
 * Redis key or a Docker name, and before the embedded Redis or a worker is
 * started: the whole $CLAUDE_BOTTLE_HOME tree and the Redis key space are the
 * same before and after.
 *
 * Which commands check the identity's agent against the manifest: only
 * `resume`, because it relaunches from the manifest. `events`, `replay`,
 * `stop`, `approve` and `deny` read the event log, which outlives manifest
 * edits (a bottle must stay stoppable after its agent was renamed); for them a
 * well-formed identity of no bottle is "no such bottle" (exit 1), still
 * touching nothing.
 */

let h: BottleHarness;
let manifest: string;
let redis: Redis;

beforeAll(async () => {
  h = await startHarness();
  manifest = h.writeManifest({
    bottles: [{ name: 'box', egress: { allow: [] }, extra_hosts: PIN_DEFAULT_HOSTS }],
    agents: [{ name: 'demo', bottle: 'box', command: ['sleep', '600'] }],
  });
  redis = h.redis.connect();
});
afterAll(async () => {
  redis?.disconnect();
  await h?.cleanup();
});

/** Every path under root with its kind, size and mtime: any created, removed or rewritten file shows up. */
function tree(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir).sort()) {
      const p = join(dir, name);
      const s = lstatSync(p);
      out.push(`${p.slice(root.length)} ${s.isDirectory() ? 'dir' : s.size} ${s.mtimeMs}`);
      if (s.isDirectory()) walk(p);
    }
  };
  walk(root);
  return out;
}

async function keys(): Promise<string[]> {
  return (await redis.keys('*')).sort();
}

const MALFORMED: Array<[string, string]> = [
  ['a slash', 'demo/x-abcde'],
  ['a path climb with slashes', '../demo-abcde'],
  ['dot-dot in the suffix', 'demo-..abc'],
  ['dot-dot alone', '..'],
  ['an upper-case suffix', 'demo-ABCDE'],
  ['an upper-case agent', 'Demo-abcde'],
  ['a 4-char suffix', 'demo-abcd'],
  ['a 6-char suffix', 'demo-abcdef'],
  ['no suffix', 'demo'],
  ['the empty string', ''],
];

const COMMANDS: Array<[string, (id: string) => string[]]> = [
  ['resume', (id) => ['resume', id]],
  ['events', (id) => ['events', id]],
  ['replay', (id) => ['replay', id]],
  ['approve', (id) => ['approve', id]],
  ['deny', (id) => ['deny', id, '--reason', 'no']],
  ['stop', (id) => ['stop', id]],
];

describe('malformed identities are refused with exit 2 before anything is touched', () => {
  it.each(COMMANDS)(
    '%s refuses every malformed identity (embedded default: no redis-server started, no file written)',
    async (_name, argv) => {
      const before = tree(h.home);
      // No REDIS_URL: a command that got past validation would start the embedded redis-server
      // under $CLAUDE_BOTTLE_HOME.
      const results = await Promise.all(
        MALFORMED.map(async ([what, id]) => ({
          what,
          id,
          r: await h.cli(['--manifest', manifest, ...argv(id)], { env: { REDIS_URL: undefined } }),
        })),
      );
      for (const { what, id, r } of results) {
        expect(r.code, `${what} (${JSON.stringify(id)}): ${r.stderr}`).toBe(2);
        expect(r.stderr).toMatch(/invalid identity|missing required argument/);
      }
      expect(tree(h.home)).toEqual(before);
    },
  );

  it.each(COMMANDS)('%s refuses every malformed identity without creating a Redis key', async (_name, argv) => {
    const [beforeKeys, beforeTree] = [await keys(), tree(h.home)];
    // The validation path is the one proved above; a few shapes suffice to watch the key space.
    const shapes = ['demo/x-abcde', '..', 'demo-ABCDE', 'demo-abcd', ''];
    const results = await Promise.all(shapes.map(async (id) => h.cli(['--manifest', manifest, ...argv(id)])));
    for (const r of results) expect(r.code, r.stderr).toBe(2);
    expect(await keys()).toEqual(beforeKeys);
    expect(tree(h.home)).toEqual(beforeTree);
  });
});

describe('agents that are not in the manifest', () => {
  it('resume refuses an identity whose agent is not in the manifest (exit 2) before looking for state', async () => {
    const [beforeKeys, beforeTree] = [await keys(), tree(h.home)];
    const r = await h.cli(['--manifest', manifest, 'resume', 'ghost-abcde']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('no agent named "ghost" in the manifest');
    expect(await keys()).toEqual(beforeKeys);
    expect(tree(h.home)).toEqual(beforeTree);
  });

  it('resume of a known agent with no saved state fails with exit 1: no event log for it', async () => {
    const beforeTree = tree(h.home);
    const r = await h.cli(['--manifest', manifest, 'resume', 'demo-zzzzz']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('no saved state for demo-zzzzz: this Redis has no event log for it');
    expect(tree(h.home)).toEqual(beforeTree);
  });

  it.each(COMMANDS.filter(([name]) => name !== 'resume'))(
    '%s refuses an identity naming no bottle whose agent is not in the manifest (exit 2): no worker, no key created',
    async (_name, argv) => {
      const [beforeKeys, beforeTree] = [await keys(), tree(h.home)];
      const r = await h.cli(['--manifest', manifest, ...argv('ghost-abcde')]);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(/no agent named "ghost" in .* and no such bottle/);
      expect(await keys()).toEqual(beforeKeys);
      // A worker would have written $CLAUDE_BOTTLE_HOME/worker/.
      expect(tree(h.home)).toEqual(beforeTree);
    },
  );

  it('a bottle whose agent has left the manifest stays readable: its log is the source of truth', async () => {
    const identity = 'renamed-abcde';
    const events = stampEvents(
      0,
      [{ type: 'bottle.start_requested', data: { plan: fakePlan(identity) } }],
      new Date(0).toISOString(),
    );
    await h.log.append(identity, 0, events, foldEvent(initialBottleState(identity), events[0]).state);
    const r = await h.cli(['--manifest', manifest, 'events', identity, '--format', 'json']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout.trim()).type).toBe('bottle.start_requested');
  });

  it.each(COMMANDS.filter(([name]) => name !== 'resume'))(
    '%s answers "no such bottle" (exit 1) for a known agent with no such bottle, starting no worker, creating no key',
    async (_name, argv) => {
      const [beforeKeys, beforeTree] = [await keys(), tree(h.home)];
      const r = await h.cli(['--manifest', manifest, ...argv('demo-zzzzz')]);
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toMatch(/no such bottle|no events for demo-zzzzz/);
      expect(await keys()).toEqual(beforeKeys);
      expect(tree(h.home)).toEqual(beforeTree);
    },
  );
});
