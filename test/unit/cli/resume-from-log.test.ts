import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { resumeFactsFromLog } from '../../../src/cli/resume-facts.js';
import { parseEvent } from '../../../src/events/schema.js';
import { contextFileReader } from '../../../src/images/build-context.js';
import { agentImageSource, imagePlan } from '../../../src/images/sources.js';
import { bottleStatus } from '../../../src/machines/index.js';
import { planMounts } from '../../../src/plan/resolve.js';
import { STATE_DOCKERFILE, STATE_TRANSCRIPT, stateDockerfileText } from '../../../src/shared/state-markers.js';
import { history, launchSteps, samplePlan, type Step } from '../../golden/fixtures.js';

/**
 * What `bottle resume` relaunches from, derived from a recorded log alone:
 * the facts the worker's state folder holds (its own Dockerfile, the
 * transcript snapshot, approved hosts) follow from the events that made the
 * worker write them.
 */

const identity = 'dev-a1b2c';
const crashed: Step[] = [
  ['agent.exited', { code: 1, signal: null }],
  ['transcript.snapshotted', { files: 3, bytes: 120, missing: false }],
  ['bottle.preserved', { reason: 'crash', resume_hint: `bottle resume ${identity}` }],
];

function dockerfileRequest(requestId: string, dockerfile: string): Step {
  return [
    'capability.requested',
    { request_id: requestId, kind: 'dockerfile', dockerfile, reason: 'a tool', queue_if_pending: false },
  ];
}

/** What apply_capability records after an approved Dockerfile: the snapshot, then the preservation. */
const appliedCapability: Step[] = [
  ['transcript.snapshotted', { files: 2, bytes: 80, missing: false }],
  ['bottle.preserved', { reason: 'capability', resume_hint: `bottle resume ${identity}` }],
];

describe('resume facts from the event log', () => {
  it('a plain preserved bottle: its latest plan, the built-in image, no snapshot, nothing approved', () => {
    const noTranscript: Step[] = [
      ['agent.exited', { code: 1, signal: null }],
      ['transcript.snapshotted', { files: 0, bytes: 0, missing: true }],
      ['bottle.preserved', { reason: 'crash', resume_hint: `bottle resume ${identity}` }],
    ];
    const facts = resumeFactsFromLog(identity, history([...launchSteps(identity), ...noTranscript]));
    expect(bottleStatus(facts.state)).toMatch(/^preserved/);
    expect(facts.plan).toEqual(samplePlan(identity));
    expect(facts.plan).toMatchObject({
      agent: 'dev',
      cwd: '/home/user/project',
      copy_cwd: false,
      host: 'buildhost',
      manifest_path: '/home/user/claude-bottle.json',
    });
    expect(facts.baseDockerfile).toBeNull();
    expect(facts.approvedDockerfile).toBeUndefined();
    expect(facts.transcriptSnapshotted).toBe(false);
    expect(facts.approvedEgress).toEqual([]);
  });

  it('a transcript snapshot is kept: a later missing snapshot does not take it away', () => {
    const facts = resumeFactsFromLog(identity, history([...launchSteps(identity), ...crashed]));
    expect(facts.transcriptSnapshotted).toBe(true);

    const resumedPlan = samplePlan(identity, { args: ['again'] });
    const againLost: Step[] = [
      ['bottle.resume_requested', { plan: resumedPlan }],
      ...launchSteps(identity, resumedPlan).slice(1),
      ['agent.exited', { code: 137, signal: 'SIGKILL' }],
      [
        'transcript.snapshotted',
        { files: 0, bytes: 0, missing: true, warning: 'the agent container no longer exists' },
      ],
      ['bottle.preserved', { reason: 'signal', resume_hint: `bottle resume ${identity}` }],
    ];
    const later = resumeFactsFromLog(identity, history([...launchSteps(identity), ...crashed, ...againLost]));
    expect(later.transcriptSnapshotted).toBe(true);
    // The latest run's plan is the one a resume starts from.
    expect(later.plan?.args).toEqual(['again']);
  });

  it('an approved Dockerfile: its body from the request event, as the worker writes it; the original is base', () => {
    const custom = samplePlan(identity, {
      image: { tag: 'claude-bottle/dev:aaaa', context_hash: 'aaaa', dockerfile: '/src/box/Dockerfile', builtin: false },
    });
    const body = 'FROM claude-bottle/dev:aaaa\nRUN echo approved';
    const steps: Step[] = [
      ...launchSteps(identity, custom),
      dockerfileRequest('cap-1', body),
      ['capability.approved', { request_id: 'cap-1', by: 'cli' }],
      ...appliedCapability,
    ];
    const facts = resumeFactsFromLog(identity, history(steps));
    expect(bottleStatus(facts.state)).toMatch(/^preserved/);
    expect(facts.approvedDockerfile).toBe(`${body}\n`);
    expect(facts.approvedDockerfile).toBe(stateDockerfileText(body));
    expect(facts.baseDockerfile).toBe('/src/box/Dockerfile');
    expect(facts.transcriptSnapshotted).toBe(true);

    // Resumed with the approved Dockerfile, then approved again: the newest wins, the base stays the original.
    const resumedPlan = samplePlan(identity, {
      image: { tag: 'claude-bottle/dev:bbbb', context_hash: 'bbbb', dockerfile: STATE_DOCKERFILE, builtin: false },
    });
    const second = 'FROM claude-bottle/dev:bbbb\nRUN echo second\n';
    const more: Step[] = [
      ['bottle.resume_requested', { plan: resumedPlan }],
      ...launchSteps(identity, resumedPlan).slice(1),
      dockerfileRequest('cap-2', second),
      ['capability.denied', { request_id: 'cap-2', reason: 'no', by: 'cli' }],
      dockerfileRequest('cap-3', second),
      ['capability.approved', { request_id: 'cap-3', by: 'cli' }],
      ...appliedCapability,
    ];
    const again = resumeFactsFromLog(identity, history([...steps, ...more]));
    expect(again.approvedDockerfile).toBe(second);
    expect(again.baseDockerfile).toBe('/src/box/Dockerfile');
    expect(again.plan?.image.dockerfile).toBe(STATE_DOCKERFILE);
  });

  it('a denied Dockerfile request changes nothing', () => {
    const steps: Step[] = [
      ...launchSteps(identity),
      dockerfileRequest('cap-1', 'FROM x\n'),
      ['capability.denied', { request_id: 'cap-1', reason: 'no', by: 'cli' }],
      ...crashed,
    ];
    expect(resumeFactsFromLog(identity, history(steps)).approvedDockerfile).toBeUndefined();
  });

  it('approved egress: live approvals and approvals recorded before egress applied live; denials are not', () => {
    const ask = (id: string, host: string, port: number): Step => [
      'capability.requested',
      { request_id: id, kind: 'egress', host, port, reason: 'fetch', queue_if_pending: true },
    ];
    const steps: Step[] = [
      ...launchSteps(identity),
      ask('cap-1', 'pypi.org', 443),
      ['capability.approved', { request_id: 'cap-1', by: 'cli' }],
      ['egress.granted', { request_id: 'cap-1', entry: 'pypi.org', live: true }],
      ['capability.answered', { request_id: 'cap-1', decision: 'approved', delivered: true }],
      ask('cap-2', 'evil.test', 443),
      ['capability.denied', { request_id: 'cap-2', reason: 'no', by: 'cli' }],
      ask('cap-3', 'mirror.test', 8443),
      ['capability.approved', { request_id: 'cap-3', by: 'cli' }],
      ...crashed,
    ];
    expect(resumeFactsFromLog(identity, history(steps)).approvedEgress).toEqual(['mirror.test:8443', 'pypi.org']);

    // A recorded v1 history: the approval applied by preserving the bottle for a rebuild.
    const golden = readFileSync(
      join(import.meta.dirname, '..', '..', 'golden', 'capability-approved-resumed.jsonl'),
      'utf8',
    );
    const events = golden
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => parseEvent(JSON.parse(l)));
    const legacy = resumeFactsFromLog('implementer-c4p4b', events.slice(0, 15));
    expect(bottleStatus(legacy.state)).toMatch(/^preserved/);
    expect(legacy.approvedEgress).toEqual(['pypi.org']);
  });

  it('an empty log has no plan and nothing to resume', () => {
    const facts = resumeFactsFromLog(identity, []);
    expect(facts.state.seq).toBe(0);
    expect(facts.plan).toBeNull();
  });
});

describe('worker-relative paths in a resumed plan', () => {
  it('the transcript mount names the state folder by its marker, not a path of the CLI machine', () => {
    const mounts = planMounts({ cwd: '/w', copyCwd: false, skills: [], transcript: true });
    expect(mounts.find((m) => m.purpose === 'transcript')).toMatchObject({ kind: 'copy', source: STATE_TRANSCRIPT });
    expect(planMounts({ cwd: '/w', copyCwd: false, skills: [] }).some((m) => m.purpose === 'transcript')).toBe(false);
  });
});

describe("the approved Dockerfile from the log hashes as the worker's state Dockerfile", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cb-resume-ctx-'));
    await mkdir(join(dir, 'box', 'files'), { recursive: true });
    await writeFile(join(dir, 'box', 'Dockerfile'), 'FROM debian:bookworm-slim\nCOPY files/a.txt /a.txt\n');
    await writeFile(join(dir, 'box', 'files', 'a.txt'), 'a\n');
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('same context, same tag: the CLI (text in memory) and the worker (its state file) agree', async () => {
    const body = 'FROM debian:bookworm-slim\nCOPY files/a.txt /a.txt\nRUN echo approved';
    const stateFile = join(dir, 'state-Dockerfile');
    await writeFile(stateFile, stateDockerfileText(body), { mode: 0o644 });
    const base = join(dir, 'box', 'Dockerfile');
    const cli = agentImageSource({ dockerfile: base, approvedDockerfile: stateDockerfileText(body), bottle: 'box' });
    const worker = agentImageSource({ dockerfile: base, stateDockerfile: stateFile, bottle: 'box' });
    const original = agentImageSource({ dockerfile: base, bottle: 'box' });

    const cliPlan = await imagePlan(cli, { persist: false });
    expect(cliPlan).toMatchObject({ dockerfile: STATE_DOCKERFILE, builtin: false });
    expect(cliPlan.tag).toBe((await imagePlan(worker, { persist: false })).tag);
    expect(cliPlan.context_hash).toBe((await imagePlan(worker, { persist: false })).context_hash);
    expect(cliPlan.tag).not.toBe((await imagePlan(original, { persist: false })).tag);
    expect(cli.files.map((f) => f.path).sort()).toEqual(original.files.map((f) => f.path).sort());
  });

  it('a file given in memory goes into the build as its bytes', async () => {
    const text = 'FROM scratch\n# é\n';
    const cli = agentImageSource({ dockerfile: join(dir, 'box', 'Dockerfile'), approvedDockerfile: text });
    const file = cli.files.find((f) => f.path === 'Dockerfile')!;
    const { size, open } = await contextFileReader(file);
    const chunks: Buffer[] = [];
    for await (const chunk of open()) chunks.push(Buffer.from(chunk as Buffer));
    expect(Buffer.concat(chunks).toString('utf8')).toBe(text);
    expect(size).toBe(Buffer.byteLength(text));
  });
});
