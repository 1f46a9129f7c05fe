import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LifecycleEvent } from '../../src/events/schema.js';
import { startClaudeFixture, type ClaudeFixture } from '../support/claude-fixture.js';
import { identityFrom, PIN_DEFAULT_HOSTS, startHarness, type BottleHarness } from '../support/cli-harness.js';
import { show } from '../support/workers.js';
import { execIn } from '../support/docker.js';

/**
 * `bottle resume <identity>`: the same identity (so the same container and
 * network names), the saved transcript back in ~/.claude, and for Claude Code
 * `--continue` so the agent carries on with its last session — proved with the
 * real Claude Code CLI against the fake Messages API: the resumed session
 * sends the first turn's words again.
 */

let h: BottleHarness;
let manifest: string;
const fixtures: ClaudeFixture[] = [];
const dirs: string[] = [];

// First run: write a transcript and crash. Any later run (a resume finds the restored file): wait, stoppable.
const CRASH_THEN_WAIT = [
  'bash',
  '-c',
  'if [ -f ~/.claude/projects/x/s.jsonl ]; then trap "exit 143" TERM; sleep 600 & wait; ' +
    'else mkdir -p ~/.claude/projects/x && echo hello > ~/.claude/projects/x/s.jsonl; exit 1; fi',
];

beforeAll(async () => {
  h = await startHarness();
  manifest = h.writeManifest({
    bottles: [{ name: 'box', egress: { allow: [] }, extra_hosts: PIN_DEFAULT_HOSTS }],
    agents: [{ name: 'phoenix', bottle: 'box', command: CRASH_THEN_WAIT }],
  });
});
afterAll(async () => {
  for (const f of fixtures) await f.close();
  await h?.cleanup();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** Events of the latest run (after the latest resume_requested). */
function lastRun(events: LifecycleEvent[]): LifecycleEvent[] {
  const at = events.map((e) => e.type).lastIndexOf('bottle.resume_requested');
  return at < 0 ? events : events.slice(at);
}

async function waitInRun(identity: string, type: string, timeoutMs = 120_000): Promise<LifecycleEvent[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const run = lastRun(await h.log.read(identity));
    if (run.some((e) => e.type === type)) return run;
    if (Date.now() > deadline)
      throw new Error(`${identity}: no ${type} in the latest run; saw ${run.map((e) => e.type).join(', ')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A working folder the agent (uid 1000) can use; bind-mounted at the same path. */
function workFolder(): string {
  const dir = mkdtempSync(join(tmpdir(), 'cb-resume-cwd-'));
  chmodSync(dir, 0o777);
  dirs.push(dir);
  return dir;
}

describe('bottle resume', () => {
  it('relaunches keeping identity and container names; transcript back in ~/.claude; metadata cwd kept', async () => {
    const cwd = workFolder();
    const identity = identityFrom(await h.cli(['--manifest', manifest, 'start', 'phoenix', '--detach', '--cwd', cwd]));
    const first = await h.waitForEvent(identity, 'bottle.preserved');
    const startPlan = (
      first.find((e) => e.type === 'bottle.start_requested')!.data as {
        plan: { containers: unknown; networks: unknown };
      }
    ).plan;

    // No --manifest: resume finds the manifest and cwd in the saved metadata.
    const resumed = await h.cli(['resume', identity, '--detach']);
    expect(resumed.code, show(resumed)).toBe(0);
    expect(resumed.stdout.split('\n')[0]).toBe(identity);
    const run = await waitInRun(identity, 'agent.started');
    const plan = (
      run[0].data as {
        plan: { identity: string; containers: unknown; networks: unknown; cwd: string; command: string[] };
      }
    ).plan;
    expect(plan.identity).toBe(identity);
    expect(plan.containers).toEqual(startPlan.containers);
    expect(plan.networks).toEqual(startPlan.networks);
    expect(plan.cwd).toBe(cwd);
    // Not Claude Code: no --continue is added to a command that would not understand it.
    expect(plan.command).toEqual(CRASH_THEN_WAIT);

    const agent = h.docker.getContainer(`cb-${identity}-agent`);
    const info = await agent.inspect();
    expect(info.Name).toBe(`/cb-${identity}-agent`);
    expect(info.State.Running).toBe(true);
    expect(info.Config.WorkingDir).toBe(cwd);
    // The restored transcript is there and belongs to the agent user.
    const cat = await execIn(
      agent,
      ['sh', '-c', 'cat ~/.claude/projects/x/s.jsonl && [ -O ~/.claude/projects/x/s.jsonl ] && echo owned'],
      { user: 'node' },
    );
    expect(cat).toEqual({ code: 0, output: 'hello\nowned\n' });

    const stopped = await h.cli(['stop', identity]);
    expect(stopped.code, show(stopped)).toBe(0);
    expect(
      (await waitInRun(identity, 'bottle.preserved')).find((e) => e.type === 'bottle.preserved')!.data,
    ).toMatchObject({ reason: 'stopped' });
  });

  it('refuses a bottle that is running, with a clear error and no second launch', async () => {
    const cwd = workFolder();
    const identity = identityFrom(await h.cli(['--manifest', manifest, 'start', 'phoenix', '--detach', '--cwd', cwd]));
    await h.waitForEvent(identity, 'bottle.preserved');
    expect((await h.cli(['resume', identity, '--detach'])).code).toBe(0);
    await waitInRun(identity, 'agent.started');
    const before = (await h.log.read(identity)).length;

    const again = await h.cli(['resume', identity, '--detach']);
    expect(again.code, show(again)).toBe(1);
    expect(again.stderr).toContain(`${identity} is running; only preserved or failed bottles can be resumed`);
    expect((await h.log.read(identity)).length).toBe(before);
    await h.cli(['stop', identity]);
  });

  it('no saved state: exit 1 saying the log has no such bottle', async () => {
    const r = await h.cli(['--manifest', manifest, 'resume', 'phoenix-00000']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('no saved state for phoenix-00000: this Redis has no event log for it');
  });
});

describe('resume continues the Claude Code session (real claude, fake Messages API)', () => {
  it('a stopped `claude -p` mid-answer resumes with --continue and resends the first turn', async () => {
    const f = await startClaudeFixture(h, {
      bottle: 'resumable',
      agents: [{ name: 'talker' }],
      fake: { holdStreamAfterFirstEvent: true },
    });
    fixtures.push(f);
    const cwd = workFolder();
    const words = `zebra-${randomBytes(4).toString('hex')} quokka-${randomBytes(4).toString('hex')}`;
    const messages = () => f.fake.requests.filter((r) => r.method === 'POST' && r.url.split('?')[0] === '/v1/messages');

    const started = await h.cli(
      ['--manifest', f.manifestPath, 'start', f.agent, '--detach', '--cwd', cwd, '--', '-p', `first turn ${words}`],
      { env: f.env },
    );
    const identity = identityFrom(started);
    // The fake holds its answer, so Claude Code is mid-turn when it is stopped.
    const deadline = Date.now() + 90_000;
    while (!messages().some((r) => r.body.includes(words))) {
      if (Date.now() > deadline) {
        const eventTypes = (await h.log.read(identity)).map((e) => e.type).join(', ');
        throw new Error(`the fake never received the first turn; events: ${eventTypes}`);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    const firstCount = messages().length;

    const stopped = await h.cli(['stop', identity]);
    expect(stopped.code, show(stopped)).toBe(0);
    const first = await h.waitForEvent(identity, 'bottle.preserved');
    expect(first.find((e) => e.type === 'agent.exited')!.data).toMatchObject({ code: 143 });
    const snap = first.find((e) => e.type === 'transcript.snapshotted')!.data as { files: number; missing: boolean };
    expect(snap.missing).toBe(false);
    expect(snap.files).toBeGreaterThan(0);

    // The resumed answer is released as it comes, so the second turn completes.
    const releaser = setInterval(() => f.fake.releaseStream(), 200);
    try {
      const resumed = await h.cli(['resume', identity, '--detach', '--', '-p', 'second turn'], { env: f.env });
      expect(resumed.code, show(resumed)).toBe(0);
      const run = await waitInRun(identity, 'bottle.cleaned', 120_000);
      const plan = (run[0].data as { plan: { command: string[]; args: string[] } }).plan;
      // --continue goes before the user's args.
      expect(plan.command).toEqual(['claude', '--continue', '-p', 'second turn']);
      expect(run.find((e) => e.type === 'agent.exited')!.data).toMatchObject({ code: 0 });
    } finally {
      clearInterval(releaser);
    }
    const resumedRequests = messages().slice(firstCount);
    const secondTurn = resumedRequests.filter((r) => r.body.includes('second turn'));
    expect(
      secondTurn.length,
      `requests after resume: ${resumedRequests.map((r) => r.body.slice(0, 200)).join('\n')}`,
    ).toBeGreaterThan(0);
    // The continued session sends the earlier conversation along with the new turn.
    expect(secondTurn.some((r) => r.body.includes(words))).toBe(true);
    expect(existsSync(join(h.home, 'state', identity))).toBe(false);
  });
});
