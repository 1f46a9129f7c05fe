import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import type { LifecycleEvent } from '../../src/events/schema.js';
import { resourceNames } from '../../src/shared/names.js';
import { identityFrom, PIN_DEFAULT_HOSTS, startHarness, type BottleHarness } from '../support/cli-harness.js';
import { execIn } from '../support/docker.js';

/**
 * The per-bottle state folder and the preservation matrix, on real bottles:
 * metadata.json written at prepare, the transcript (~/.claude) snapshotted on
 * every exit, state removed after exit 0 and kept (with `.preserve` and a
 * resume hint) after a crash, a signal, a docker kill or `bottle stop`.
 */

let h: BottleHarness;
let manifest: string;

// PID 1 in the agent container ignores signals it has no handler for, so an
// agent that should die of SIGTERM promptly traps it (exit 143 = 128 + 15).
const STOPPABLE = ['bash', '-c', 'trap "exit 143" TERM; sleep 600 & wait'];

beforeAll(async () => {
  h = await startHarness();
  manifest = h.writeManifest({
    bottles: [{ name: 'box', egress: { allow: [] }, extra_hosts: PIN_DEFAULT_HOSTS }],
    agents: [
      { name: 'sleeper', bottle: 'box', command: STOPPABLE },
      {
        name: 'ok',
        bottle: 'box',
        command: ['bash', '-c', 'mkdir -p ~/.claude/projects/x && echo bye > ~/.claude/projects/x/s.jsonl; exit 0'],
      },
      {
        name: 'writer',
        bottle: 'box',
        command: ['bash', '-c', 'mkdir -p ~/.claude/projects/x && echo hello > ~/.claude/projects/x/s.jsonl; exit 1'],
      },
      { name: 'nohome', bottle: 'box', command: ['bash', '-c', 'rm -rf ~/.claude; exit 1'] },
      // A child killed by SIGINT (as Ctrl-C would) makes the agent exit 130.
      { name: 'interrupted', bottle: 'box', command: ['bash', '-c', 'bash -c "kill -INT \\$\\$"; exit $?'] },
      { name: 'killed', bottle: 'box', command: ['sleep', '600'] },
      // The audit's reproduction: a sparse 1 GiB file costs the agent nothing; copied whole, the host a gigabyte.
      {
        name: 'hoarder',
        bottle: 'box',
        command: [
          'bash',
          '-c',
          'mkdir -p ~/.claude/projects/x && echo kept > ~/.claude/projects/x/s.jsonl && ' +
            'truncate -s 1G ~/.claude/big.jsonl && touch ~/.claude/ready; trap "exit 143" TERM; sleep 600 & wait',
        ],
      },
    ],
  });
});
afterAll(async () => {
  await h?.cleanup();
});

const stateOf = (identity: string) => join(h.home, 'state', identity);
const only = (events: LifecycleEvent[], type: string) => events.filter((e) => e.type === type);

/**
 * The preserved outcome every non-zero exit must have: marker, kept folder, hint in the event and in `bottle events`.
 */
async function expectPreserved(identity: string, reason: string): Promise<LifecycleEvent[]> {
  const events = await h.waitForEvent(identity, 'bottle.preserved');
  const preserved = only(events, 'bottle.preserved')[0];
  expect(preserved.data).toMatchObject({ reason, resume_hint: `bottle resume ${identity}` });
  // Snapshot before preservation: the transcript is taken while the container still exists.
  const types = events.map((e) => e.type);
  expect(types.indexOf('transcript.snapshotted')).toBeGreaterThan(types.indexOf('agent.exited'));
  expect(types.indexOf('transcript.snapshotted')).toBeLessThan(types.indexOf('bottle.preserved'));
  expect(existsSync(join(stateOf(identity), '.preserve'))).toBe(true);
  expect(JSON.parse(readFileSync(join(stateOf(identity), '.preserve'), 'utf8'))).toMatchObject({ reason });
  expect(existsSync(join(stateOf(identity), 'metadata.json'))).toBe(true);
  const shown = await h.cli(['events', identity]);
  expect(shown.stdout).toContain(`resume with: bottle resume ${identity}`);
  return events;
}

describe('metadata.json', () => {
  it('written at prepare (agent, cwd, copy_cwd, started_at, host), read while running; stop preserves', async () => {
    const before = Date.now();
    // A project folder of its own: the state folder itself is refused as a working folder.
    const cwd = realpathSync(mkdtempSync(join(tmpdir(), 'cb-state-cwd-')));
    onTestFinished(() => rmSync(cwd, { recursive: true, force: true }));
    const started = await h.cli(['--manifest', manifest, 'start', 'sleeper', '--detach', '--cwd', cwd]);
    const identity = identityFrom(started);
    await h.waitForEvent(identity, 'agent.started');
    const metadata = JSON.parse(readFileSync(join(stateOf(identity), 'metadata.json'), 'utf8'));
    expect(metadata).toMatchObject({ identity, agent: 'sleeper', bottle: 'box', cwd, copy_cwd: false });
    expect(Date.parse(metadata.started_at)).toBeGreaterThanOrEqual(before - 1000);
    expect(Date.parse(metadata.started_at)).toBeLessThanOrEqual(Date.now());
    // The host the bottle's Docker daemon runs on (here the daemon is local, so it is this machine).
    const dockerHost = execFileSync('docker', ['info', '--format', '{{.Name}}'], { encoding: 'utf8' }).trim();
    expect(metadata.host).toBe(dockerHost);
    // A fresh launch leaves no preservation marker behind.
    expect(existsSync(join(stateOf(identity), '.preserve'))).toBe(false);

    const stopped = await h.cli(['stop', identity]);
    expect(stopped.code, stopped.stderr).toBe(0);
    expect(stopped.stdout).toContain(`resume with: bottle resume ${identity}`);
    const events = await expectPreserved(identity, 'stopped');
    expect(only(events, 'agent.exited')[0].data).toMatchObject({ code: 143 });
  });
});

describe('transcript snapshot and the preservation matrix', () => {
  it('exit 0: the transcript is snapshotted, then the whole state folder is removed', async () => {
    const identity = identityFrom(await h.cli(['--manifest', manifest, 'start', 'ok', '--detach']));
    const events = await h.waitForEvent(identity, 'bottle.cleaned');
    // The agent's file, plus the bottle-request skill and the settings.json with status hooks every bottle gets.
    expect(only(events, 'transcript.snapshotted')[0].data).toMatchObject({ missing: false, files: 3 });
    expect(only(events, 'bottle.preserved')).toHaveLength(0);
    expect(existsSync(stateOf(identity))).toBe(false);
  });

  it('exit 1 (attached, no TTY): ~/.claude files land in state/<id>/transcript; start prints resume hint', async () => {
    const run = await h.cli(['--manifest', manifest, 'start', 'writer']);
    expect(run.code, run.stderr).toBe(1);
    const identity = /bottle (\S+): starting/.exec(run.stderr)?.[1];
    expect(identity).toMatch(/^writer-[0-9a-z]{5}$/);
    expect(run.stderr).toContain(`resume with: bottle resume ${identity}`);
    const events = await expectPreserved(identity!, 'crash');
    expect(only(events, 'agent.exited')[0].data).toMatchObject({ code: 1 });
    // The agent's file, plus the bottle-request skill and the settings.json with status hooks every bottle gets.
    expect(only(events, 'transcript.snapshotted')[0].data).toMatchObject({ missing: false, files: 3 });
    expect(readFileSync(join(stateOf(identity!), 'transcript', 'projects', 'x', 's.jsonl'), 'utf8')).toBe('hello\n');
  });

  it('a 1 GiB transcript file is skipped and recorded on stop; nothing big lands under state/', async () => {
    const identity = identityFrom(await h.cli(['--manifest', manifest, 'start', 'hoarder', '--detach']));
    await h.waitForEvent(identity, 'agent.started');
    const agent = h.docker.getContainer(resourceNames(identity).agentContainer);
    for (let i = 0; (await execIn(agent, ['test', '-f', '/home/node/.claude/ready'])).code !== 0; i++) {
      if (i > 100) throw new Error('the agent never wrote its transcript files');
      await new Promise((r) => setTimeout(r, 100));
    }
    const stopped = await h.cli(['stop', identity]);
    expect(stopped.code, stopped.stderr).toBe(0);
    const events = await expectPreserved(identity, 'stopped');
    expect(only(events, 'transcript.snapshotted')[0].data).toMatchObject({
      missing: false,
      skipped: [{ path: 'big.jsonl', bytes: 1024 ** 3 }],
      skipped_count: 1,
      skipped_bytes: 1024 ** 3,
      limit_bytes: 256 * 1024 ** 2,
    });
    const transcript = join(stateOf(identity), 'transcript');
    expect(readFileSync(join(transcript, 'projects', 'x', 's.jsonl'), 'utf8')).toBe('kept\n');
    expect(existsSync(join(transcript, 'big.jsonl'))).toBe(false);
    // Allocated size, so a sparse copy would count too: the whole state folder stays small.
    const kib = Number(execFileSync('du', ['-sk', h.home], { encoding: 'utf8' }).split('\t')[0]);
    expect(kib).toBeLessThan(10 * 1024);
    expect(readdirSync(stateOf(identity)).filter((n) => n.includes('.partial-'))).toEqual([]);
    const shown = await h.cli(['events', identity]);
    expect(shown.stdout).toContain(`skipped 1 over the ${256 * 1024 ** 2} bytes limit: big.jsonl (${1024 ** 3} bytes)`);
  });

  it('no ~/.claude: a warning (transcript.snapshotted missing: true), not a failure; still preserved', async () => {
    const identity = identityFrom(await h.cli(['--manifest', manifest, 'start', 'nohome', '--detach']));
    const events = await expectPreserved(identity, 'crash');
    expect(only(events, 'transcript.snapshotted')[0].data).toMatchObject({ missing: true, files: 0 });
    expect(only(events, 'bottle.failed')).toHaveLength(0);
    expect(only(events, 'effect.failed')).toHaveLength(0);
    expect(existsSync(join(stateOf(identity), 'transcript'))).toBe(false);
    const shown = await h.cli(['events', identity]);
    expect(shown.stdout).toContain('transcript not found');
  });

  it('SIGINT (130): preserved with reason signal', async () => {
    const identity = identityFrom(await h.cli(['--manifest', manifest, 'start', 'interrupted', '--detach']));
    const events = await expectPreserved(identity, 'signal');
    expect(only(events, 'agent.exited')[0].data).toMatchObject({ code: 130 });
  });

  it('docker kill (137): preserved with reason signal', async () => {
    const identity = identityFrom(await h.cli(['--manifest', manifest, 'start', 'killed', '--detach']));
    await h.waitForEvent(identity, 'agent.started');
    await h.docker.getContainer(`cb-${identity}-agent`).kill({ signal: 'SIGKILL' });
    const events = await expectPreserved(identity, 'signal');
    expect(only(events, 'agent.exited')[0].data).toMatchObject({ code: 137 });
  });
});

describe('a leftover .preserve', () => {
  it('is cleared when the bottle launches again (resume), and comes back when it is stopped', async () => {
    const identity = identityFrom(await h.cli(['--manifest', manifest, 'start', 'sleeper', '--detach']));
    await h.waitForEvent(identity, 'agent.started');
    expect((await h.cli(['stop', identity])).code).toBe(0);
    await expectPreserved(identity, 'stopped');

    const resumed = await h.cli(['resume', identity, '--detach']);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stdout.split('\n')[0]).toBe(identity);
    const events = await h.log.read(identity);
    const resumedAt = events.findIndex((e) => e.type === 'bottle.resume_requested');
    expect(events.slice(resumedAt).some((e) => e.type === 'agent.started')).toBe(true);
    // Running again: the marker of the earlier run is gone, the state folder stays.
    expect(existsSync(join(stateOf(identity), '.preserve'))).toBe(false);
    expect(existsSync(join(stateOf(identity), 'metadata.json'))).toBe(true);
    const listed = await h.cli(['list', '--format', 'json']);
    expect(JSON.parse(listed.stdout)).toContainEqual(expect.objectContaining({ identity, state: 'running' }));

    expect((await h.cli(['stop', identity])).code).toBe(0);
    expect(existsSync(join(stateOf(identity), '.preserve'))).toBe(true);
  });
});
