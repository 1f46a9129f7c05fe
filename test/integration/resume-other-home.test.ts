import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LifecycleEvent } from '../../src/events/schema.js';
import { agentImageSource, imagePlan } from '../../src/images/sources.js';
import type { BottlePlan } from '../../src/plan/schema.js';
import { identityFrom, PIN_DEFAULT_HOSTS, startHarness, type BottleHarness } from '../support/cli-harness.js';
import { requestCapability } from '../support/agent-requests.js';
import { execIn } from '../support/docker.js';
import { hostIsLive, show, TestWorkers, until } from '../support/workers.js';

/**
 * The CLI never reads a worker's disk: a bottle's worker runs with a
 * $CLAUDE_BOTTLE_HOME of its own (as on another machine), and `bottle resume`
 * runs with yet another home that holds no state folder. The resume comes
 * from the event log alone: it relaunches on the bottle's host, restores the
 * transcript the worker snapshotted into its own state folder, and builds
 * the Dockerfile approved through a capability request, under the tag the
 * worker's own state Dockerfile hashes to.
 */

let h: BottleHarness;
let manifest: string;
const hostId = `cb-home-${randomBytes(3).toString('hex')}`;
const workerHome = mkdtempSync(join(tmpdir(), 'cb-worker-home-'));
const resumeHome = mkdtempSync(join(tmpdir(), 'cb-cli-home-'));
const dirs = [workerHome, resumeHome];
const workers = new TestWorkers(() => h);

// Notes each run in the transcript: the first run writes it, a run that finds it restored appends.
const AGENT = [
  'bash',
  '-c',
  'f=~/.claude/projects/x/s.jsonl; mkdir -p ~/.claude/projects/x; ' +
    'if [ -f $f ]; then echo resumed >> $f; else echo asked > $f; fi; trap "exit 143" TERM; sleep 600 & wait',
];

/** Events of the latest run (after the latest resume_requested). */
async function latestRunWith(identity: string, type: string): Promise<LifecycleEvent[]> {
  return until(
    `${type} in the latest run of ${identity}`,
    async () => {
      const events = await h.log.read(identity);
      const run = events.slice(Math.max(0, events.map((e) => e.type).lastIndexOf('bottle.resume_requested')));
      if (run.some((e) => e.type === 'bottle.failed')) throw new Error(`${identity} failed: ${JSON.stringify(run)}`);
      return run.some((e) => e.type === type) && run;
    },
    300_000,
  );
}

beforeAll(async () => {
  h = await startHarness({ env: { CLAUDE_BOTTLE_NO_EMBEDDED_WORKER: '1' } });
  manifest = h.writeManifest({
    bottles: [{ name: 'box', egress: { allow: [] }, extra_hosts: PIN_DEFAULT_HOSTS }],
    agents: [{ name: 'roamer', bottle: 'box', command: AGENT }],
  });
  workers.start(hostId, { CLAUDE_BOTTLE_HOME: workerHome });
  await until('the worker of the bottle host', () => hostIsLive(h, hostId));
}, 120_000);

afterAll(async () => {
  await workers.stopAll();
  await h?.cleanup();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('resume from a CLI whose home is not the worker’s', () => {
  it('relaunches from the log: transcript restored, approved Dockerfile built under the worker tag', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'cb-roam-cwd-'));
    chmodSync(cwd, 0o777);
    dirs.push(cwd);
    const started = await h.cli([
      '--manifest',
      manifest,
      'start',
      'roamer',
      '--host',
      hostId,
      '--detach',
      '--cwd',
      cwd,
    ]);
    const identity = identityFrom(started);
    const first = await latestRunWith(identity, 'agent.started');
    const startPlan = (first[0].data as { plan: BottlePlan }).plan;
    expect(startPlan.host).toBe(hostId);

    const dockerfile = `FROM ${startPlan.image.tag}\nRUN echo built-by-capability > /home/node/.capability-marker`;
    const asked = await requestCapability(h.docker, identity, {
      kind: 'dockerfile',
      dockerfile,
      reason: 'need a marker',
    });
    expect(asked.code, asked.output).toBe(0);
    await latestRunWith(identity, 'capability.requested');
    const approved = await h.cli(['approve', identity]);
    expect(approved.code, show(approved)).toBe(0);
    await latestRunWith(identity, 'bottle.preserved');

    // The state is the worker's: its home has it, neither CLI home does.
    const workerState = join(workerHome, 'state', identity);
    expect(readFileSync(join(workerState, 'Dockerfile'), 'utf8')).toBe(`${dockerfile}\n`);
    expect(existsSync(join(workerState, 'transcript', 'projects', 'x', 's.jsonl'))).toBe(true);
    expect(existsSync(join(h.home, 'state', identity))).toBe(false);

    const resumed = await h.cli(['resume', identity, '--detach'], {
      env: { CLAUDE_BOTTLE_HOME: resumeHome },
      timeoutMs: 300_000,
    });
    expect(resumed.code, show(resumed)).toBe(0);
    expect(resumed.stdout.split('\n')[0]).toBe(identity);
    const run = await latestRunWith(identity, 'agent.started');
    const plan = (run[0].data as { plan: BottlePlan }).plan;
    expect(plan).toMatchObject({ host: hostId, cwd, agent: 'roamer', manifest_path: manifest });
    expect(plan.image.dockerfile).toBe('state:Dockerfile');
    expect(plan.mounts.find((m) => m.purpose === 'transcript')?.source).toBe('state:transcript');
    expect(existsSync(join(resumeHome, 'state'))).toBe(false);

    // The CLI hashed the approved text from the log; the worker's own state Dockerfile hashes the same.
    const workerSource = agentImageSource({ stateDockerfile: join(workerState, 'Dockerfile'), bottle: 'box' });
    expect((await imagePlan(workerSource, { persist: false })).tag).toBe(plan.image.tag);
    expect(plan.image.tag).not.toBe(startPlan.image.tag);

    const agent = h.docker.getContainer(`cb-${identity}-agent`);
    expect((await agent.inspect()).Config.Image).toBe(plan.image.tag);
    expect(await execIn(agent, ['cat', '/home/node/.capability-marker'], { user: 'node' })).toEqual({
      code: 0,
      output: 'built-by-capability\n',
    });
    // agent.started says the container runs; its command writes its line once the agent's first program lets it.
    const readTranscript = () => execIn(agent, ['sh', '-c', 'cat ~/.claude/projects/x/s.jsonl'], { user: 'node' });
    await until('the resumed agent to write its line', async () => (await readTranscript()).output.includes('resumed'));
    expect(await readTranscript()).toEqual({ code: 0, output: 'asked\nresumed\n' });

    const stopped = await h.cli(['stop', identity], { env: { CLAUDE_BOTTLE_HOME: resumeHome } });
    expect(stopped.code, show(stopped)).toBe(0);
    await latestRunWith(identity, 'bottle.preserved');
    expect(existsSync(join(resumeHome, 'state'))).toBe(false);
  }, 600_000);

  it('an approved Dockerfile of a custom image is built in the original build context the log names', async () => {
    const builtin = await imagePlan(agentImageSource({}), { persist: false });
    const customManifest = h.writeManifest(
      {
        bottles: [
          { name: 'crafted', dockerfile: './ctx/Dockerfile', egress: { allow: [] }, extra_hosts: PIN_DEFAULT_HOSTS },
        ],
        agents: [{ name: 'crafter', bottle: 'crafted', command: AGENT }],
      },
      {
        'ctx/Dockerfile': `FROM ${builtin.tag}\nCOPY files/a.txt /home/node/a.txt\n`,
        'ctx/files/a.txt': 'from-the-context\n',
      },
    );
    const started = await h.cli(['--manifest', customManifest, 'start', 'crafter', '--host', hostId, '--detach']);
    const identity = identityFrom(started);
    const startPlan = ((await latestRunWith(identity, 'agent.started'))[0].data as { plan: BottlePlan }).plan;
    const original = join(dirname(customManifest), 'ctx', 'Dockerfile');
    expect(startPlan.image).toMatchObject({ dockerfile: original, builtin: false });

    // The approved Dockerfile copies a file of the original context: the rebuild must have that context.
    const dockerfile = `FROM ${builtin.tag}\nCOPY files/a.txt /home/node/approved.txt\n`;
    const asked = await requestCapability(h.docker, identity, { kind: 'dockerfile', dockerfile, reason: 'a copy' });
    expect(asked.code, asked.output).toBe(0);
    await latestRunWith(identity, 'capability.requested');
    expect((await h.cli(['approve', identity])).code).toBe(0);
    await latestRunWith(identity, 'bottle.preserved');

    const resumed = await h.cli(['resume', identity, '--detach'], {
      env: { CLAUDE_BOTTLE_HOME: resumeHome },
      timeoutMs: 300_000,
    });
    expect(resumed.code, show(resumed)).toBe(0);
    const plan = ((await latestRunWith(identity, 'agent.started'))[0].data as { plan: BottlePlan }).plan;
    expect(plan.image.dockerfile).toBe('state:Dockerfile');
    const workerSource = agentImageSource({
      dockerfile: original,
      stateDockerfile: join(workerHome, 'state', identity, 'Dockerfile'),
      bottle: 'crafted',
    });
    expect((await imagePlan(workerSource, { persist: false })).tag).toBe(plan.image.tag);

    const agent = h.docker.getContainer(`cb-${identity}-agent`);
    expect((await agent.inspect()).Config.Image).toBe(plan.image.tag);
    expect(await execIn(agent, ['cat', '/home/node/approved.txt'], { user: 'node' })).toEqual({
      code: 0,
      output: 'from-the-context\n',
    });
    expect((await h.cli(['stop', identity])).code).toBe(0);
    await latestRunWith(identity, 'bottle.preserved');
  }, 600_000);
});
