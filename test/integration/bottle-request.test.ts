import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resumeFactsFromLog } from '../../src/cli/resume-facts.js';
import type { EventOf, LifecycleEvent } from '../../src/events/schema.js';
import { decisionFileName, GATEWAY_DECISIONS_DIR } from '../../src/gateway/protocol.js';
import {
  identityFrom,
  PIN_DEFAULT_HOSTS,
  startHarness,
  type BottleHarness,
  type CliResult,
} from '../support/cli-harness.js';
import { execIn } from '../support/docker.js';
import { startUpstream, type Upstream } from '../support/upstream.js';

/**
 * The agent's side of capability requests, in a real bottle: `bottle-request` (shipped in every bottle)
 * files the request with the gateway and waits; `bottle deny` reaches it with the operator's reason while
 * the bottle keeps running; `bottle approve` of a host grows the running gateway's allowlist, so the same
 * agent reaches the host at once; an approved Dockerfile stops the bottle, and the resume runs the new
 * image with the session's transcript, which holds what `bottle-request` printed.
 *
 * The only upstream is a test-owned server on this machine, reached as `live.test` pinned to host-gateway.
 */

let h: BottleHarness;
let upstream: Upstream;
let manifest: string;
let customManifest: string;

// A custom image with no curl (debian:bookworm-slim and a node user): bottle-request falls back on bash's /dev/tcp.
const CUSTOM_DOCKERFILE =
  'FROM debian:bookworm-slim\n' +
  'RUN groupadd --gid 1000 node && useradd --uid 1000 --gid node --create-home --home-dir /home/node node\n' +
  'USER node\nWORKDIR /home/node\n';

// Leaves a transcript file, then waits; stoppable by SIGTERM.
const AGENT = [
  'bash',
  '-c',
  'mkdir -p ~/.claude/projects/x && echo started > ~/.claude/projects/x/s.jsonl; ' +
    'trap "exit 143" TERM; sleep 600 & wait',
];

beforeAll(async () => {
  h = await startHarness();
  upstream = await startUpstream(h.docker, { body: 'hello-after-approval' });
  manifest = h.writeManifest({
    bottles: [
      { name: 'box', egress: { allow: [] }, extra_hosts: { 'live.test': 'host-gateway', ...PIN_DEFAULT_HOSTS } },
    ],
    agents: [{ name: 'asker', bottle: 'box', command: AGENT }],
  });
  customManifest = h.writeManifest(
    {
      bottles: [
        { name: 'bare', dockerfile: './bare.Dockerfile', egress: { allow: [] }, extra_hosts: PIN_DEFAULT_HOSTS },
      ],
      agents: [{ name: 'bare-asker', bottle: 'bare', command: ['sleep', '600'] }],
    },
    { 'bare.Dockerfile': CUSTOM_DOCKERFILE },
  );
}, 180_000);

afterAll(async () => {
  await h?.cleanup();
  await upstream?.stop();
});

function show(r: CliResult): string {
  return `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;
}

async function waitForCount(
  identity: string,
  type: string,
  count: number,
  timeoutMs = 60_000,
): Promise<LifecycleEvent[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const events = await h.log.read(identity);
    if (events.filter((e) => e.type === type).length >= count) return events;
    if (Date.now() > deadline)
      throw new Error(`${identity}: fewer than ${count} ${type}; saw ${events.map((e) => e.type).join(', ')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function listedState(identity: string): Promise<string | undefined> {
  const listed = await h.cli(['list', '--format', 'json']);
  return (JSON.parse(listed.stdout) as Array<{ identity: string; state: string }>).find((b) => b.identity === identity)
    ?.state;
}

async function startAsker(): Promise<{ identity: string; plan: { image: { tag: string } } }> {
  const identity = identityFrom(await h.cli(['--manifest', manifest, 'start', 'asker', '--detach']));
  const events = await h.waitForEvent(identity, 'agent.started');
  return { identity, plan: (events[0].data as { plan: { image: { tag: string } } }).plan };
}

const agentOf = (identity: string) => h.docker.getContainer(`cb-${identity}-agent`);
const inAgent = (identity: string, script: string) =>
  execIn(agentOf(identity), ['bash', '-c', script], { user: 'node' });

/** The upstream through the gateway, as any tool in the bottle would reach it: status code, then body. */
const fetchUpstream = (identity: string) =>
  inAgent(identity, `curl -s -w '\\n%{http_code}' http://live.test:${upstream.port}/`);

describe('bottle-request', () => {
  it('egress: a denial tells the agent why; an approval lets the same running agent through at once', async () => {
    const { identity } = await startAsker();
    const before = await fetchUpstream(identity);
    expect(before.output.trim().split('\n').at(-1)).toBe('403');
    expect(before.output).toContain(`bottle-request egress live.test:${upstream.port}`);

    const ask = () =>
      inAgent(identity, `bottle-request egress live.test:${upstream.port} --reason 'fetch the fixtures'`);
    const denying = ask();
    await waitForCount(identity, 'capability.requested', 1);
    const denied = await h.cli(['deny', identity, '--reason', 'use the mirror\u001b[2J instead']);
    expect(denied.code, show(denied)).toBe(0);
    const deniedAnswer = await denying;
    expect(deniedAnswer.code, deniedAnswer.output).toBe(1);
    expect(deniedAnswer.output).toContain('denied: the operator refused this request: use the mirror');
    expect(deniedAnswer.output).toContain('instead');
    expect(deniedAnswer.output).not.toContain('\u001b');
    expect((await agentOf(identity).inspect()).State.Running).toBe(true);
    expect(await listedState(identity)).toBe('running');
    const told = await waitForCount(identity, 'capability.answered', 1);
    expect(told.find((e) => e.type === 'capability.answered')!.data).toMatchObject({
      decision: 'denied',
      delivered: true,
    });

    const approving = ask();
    await waitForCount(identity, 'capability.requested', 2);
    const approved = await h.cli(['approve', identity]);
    expect(approved.code, show(approved)).toBe(0);
    expect(approved.stdout).toContain(`approved; live.test:${upstream.port} is allowed now in the running bottle`);
    const approvedAnswer = await approving;
    expect(approvedAnswer.code, approvedAnswer.output).toBe(0);
    expect(approvedAnswer.output).toContain(`approved: live.test:${upstream.port} is allowed now from this bottle`);
    // The same agent, still running, reaches the host now.
    const after = await fetchUpstream(identity);
    expect(after.output).toBe('hello-after-approval\n200');
    expect(await upstream.connections()).toBeGreaterThan(0);

    const events = await h.log.read(identity);
    const types = events.map((e) => e.type);
    expect(types).not.toContain('bottle.preserved');
    expect(events.find((e) => e.type === 'egress.granted')!.data).toMatchObject({
      entry: `live.test:${upstream.port}`,
      live: true,
    });
    expect(await listedState(identity)).toBe('running');
    // The gateway's allowlist grew from the decision the worker wrote into it.
    const approvals = events.filter((e): e is EventOf<'capability.approved'> => e.type === 'capability.approved');
    const approvedId = approvals.at(-1)!.data.request_id;
    const decisionPath = `${GATEWAY_DECISIONS_DIR}/${decisionFileName(approvedId)!}`;
    const decision = await execIn(h.docker.getContainer(`cb-${identity}-gateway`), ['cat', decisionPath]);
    expect(JSON.parse(decision.output)).toMatchObject({ decision: 'approved', allow: `live.test:${upstream.port}` });
    // Kept for later resumes by the log alone: the approval is among the facts a resume folds from it.
    expect(resumeFactsFromLog(identity, events).approvedEgress).toEqual([`live.test:${upstream.port}`]);
    expect((await h.cli(['stop', identity])).code).toBe(0);
    const resumed = await h.cli(['resume', identity, '--detach']);
    expect(resumed.code, show(resumed)).toBe(0);
    const resume = [...(await h.log.read(identity))].reverse().find((e) => e.type === 'bottle.resume_requested')!;
    expect((resume.data as { plan: { hosts: string[] } }).plan.hosts).toContain(`live.test:${upstream.port}`);
    await waitForCount(identity, 'agent.started', 2);
    expect((await fetchUpstream(identity)).output).toBe('hello-after-approval\n200');
    expect((await h.cli(['stop', identity])).code).toBe(0);
  });

  it('dockerfile: approve -> preserved -> resume runs the new image, and the session holds the answer', async () => {
    const { identity, plan } = await startAsker();
    const dockerfile = `FROM ${plan.image.tag}\nRUN echo built-by-request > /home/node/.request-marker\n`;
    const write = await execIn(agentOf(identity), ['bash', '-c', 'printf "%s" "$DOCKERFILE" > /tmp/Dockerfile.new'], {
      user: 'node',
      env: [`DOCKERFILE=${dockerfile}`],
    });
    expect(write.code, write.output).toBe(0);
    const answerFile = '~/.claude/projects/x/answer.txt';
    const asking = inAgent(
      identity,
      // The agent's own command may not have made the folder yet.
      `mkdir -p ~/.claude/projects/x; bottle-request dockerfile /tmp/Dockerfile.new --reason 'needs a marker' ` +
        `> ${answerFile} 2>&1; echo "exit $?" >> ${answerFile}`,
    );
    const requested = await waitForCount(identity, 'capability.requested', 1).catch(async (err: Error) => {
      const said = await inAgent(identity, `cat ${answerFile}; ps ax`);
      throw new Error(`${err.message}\nin the bottle: ${said.output}`);
    });
    expect(requested.find((e) => e.type === 'capability.requested')!.data).toMatchObject({
      kind: 'dockerfile',
      dockerfile,
    });

    const approved = await h.cli(['approve', identity]);
    expect(approved.code, show(approved)).toBe(0);
    expect(approved.stdout).toContain(`bottle resume ${identity}`);
    await asking.catch(() => undefined);
    expect(await listedState(identity)).toBe('preserved');

    const resumed = await h.cli(['resume', identity, '--detach'], { timeoutMs: 300_000 });
    expect(resumed.code, show(resumed)).toBe(0);
    await waitForCount(identity, 'agent.started', 2, 300_000);
    const marker = await inAgent(identity, 'cat ~/.request-marker');
    expect(marker).toEqual({ code: 0, output: 'built-by-request\n' });
    // The session continued: its transcript came along, with what bottle-request told the agent.
    const answer = await inAgent(identity, `cat ${answerFile}`);
    expect(answer.output).toMatch(
      /approved: this bottle will now be stopped, rebuilt with the new Dockerfile and resumed/,
    );
    expect(answer.output).toContain('exit 0');
    expect((await h.cli(['stop', identity])).code).toBe(0);
  });

  it('a custom image without curl gets the command too, and hears a denial', async () => {
    const started = await h.cli(['--manifest', customManifest, 'start', 'bare-asker', '--detach'], {
      timeoutMs: 300_000,
    });
    const identity = identityFrom(started);
    await h.waitForEvent(identity, 'agent.started', 300_000);
    expect((await inAgent(identity, 'command -v curl || echo none')).output).toBe('none\n');
    const asking = inAgent(identity, `bottle-request egress mirror.test --reason 'a package mirror'`);
    await waitForCount(identity, 'capability.requested', 1);
    const denied = await h.cli(['deny', identity, '--reason', 'no mirrors today']);
    expect(denied.code, show(denied)).toBe(0);
    const answer = await asking;
    expect(answer.code, answer.output).toBe(1);
    expect(answer.output).toContain('denied: the operator refused this request: no mirrors today');
    expect((await h.cli(['stop', identity])).code).toBe(0);
  });
});
