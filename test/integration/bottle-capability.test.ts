import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GATEWAY_CONFIG_PATH } from '../../src/gateway/protocol.js';
import type { LifecycleEvent } from '../../src/events/schema.js';
import { identityFrom, PIN_DEFAULT_HOSTS, startHarness, type BottleHarness } from '../support/cli-harness.js';
import { requestCapability } from '../support/agent-requests.js';
import { execIn } from '../support/docker.js';
import { show } from '../support/workers.js';

/**
 * Capability requests end to end: the agent asks the gateway
 * (POST /_bottle/capability on the credential port), the request becomes a
 * capability.requested event, the operator denies (the bottle keeps running)
 * or approves: a host joins the running gateway's allowlist and the state
 * folder (a later resume keeps it); a Dockerfile is applied by a step that
 * snapshots, records it in the state folder and preserves the bottle, and
 * `bottle resume` relaunches with the new Dockerfile built.
 */

let h: BottleHarness;
let manifest: string;

// Leaves a transcript file (to see the apply step snapshot it), then waits; stoppable by SIGTERM.
const AGENT = [
  'bash',
  '-c',
  'mkdir -p ~/.claude/projects/x && echo asked > ~/.claude/projects/x/s.jsonl; trap "exit 143" TERM; sleep 600 & wait',
];

beforeAll(async () => {
  h = await startHarness();
  manifest = h.writeManifest({
    bottles: [{ name: 'box', egress: { allow: [] }, extra_hosts: PIN_DEFAULT_HOSTS }],
    agents: [{ name: 'asker', bottle: 'box', command: AGENT }],
  });
});
afterAll(async () => {
  await h?.cleanup();
});

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

describe('egress capability', () => {
  it('a request made while another is pending waits its turn: denying the first makes it the pending one', async () => {
    const { identity } = await startAsker();
    expect(
      (await requestCapability(h.docker, identity, { kind: 'egress', host: 'first.test', port: 443, reason: 'one' }))
        .code,
    ).toBe(0);
    await waitForCount(identity, 'capability.requested', 1);
    expect(
      (await requestCapability(h.docker, identity, { kind: 'egress', host: 'second.test', port: 443, reason: 'two' }))
        .code,
    ).toBe(0);
    const events = await waitForCount(identity, 'capability.requested', 2);
    const secondId = (events.filter((e) => e.type === 'capability.requested')[1].data as { request_id: string })
      .request_id;
    expect(await listedState(identity)).toBe('running (capability pending, 1 more queued)');

    const denied = await h.cli(['deny', identity, '--reason', 'not first']);
    expect(denied.code, show(denied)).toBe(0);
    expect(denied.stdout).toContain(`next pending request ${secondId}: egress second.test:443 (two)`);
    expect(await listedState(identity)).toBe('running (capability pending)');

    const deniedAgain = await h.cli(['deny', identity, '--reason', 'nor second']);
    expect(deniedAgain.code, show(deniedAgain)).toBe(0);
    expect(deniedAgain.stdout).toBe(`denied ${secondId}\n`);
    expect(await listedState(identity)).toBe('running');
  });

  it('ask, pending in list; deny keeps it running; ask again; approve applies live; kept on resume', async () => {
    const { identity } = await startAsker();

    const asked = await requestCapability(h.docker, identity, {
      kind: 'egress',
      host: 'newhost.test',
      port: 443,
      reason: 'need it',
    });
    expect(asked.code, asked.output).toBe(0);
    expect(JSON.parse(asked.output)).toMatchObject({ status: 'pending' });
    let events = await waitForCount(identity, 'capability.requested', 1);
    const first = events.find((e) => e.type === 'capability.requested')!;
    expect(first.data).toMatchObject({ kind: 'egress', host: 'newhost.test', port: 443, reason: 'need it' });
    expect(await listedState(identity)).toBe('running (capability pending)');

    const denied = await h.cli(['deny', identity, '--reason', 'no']);
    expect(denied.code, show(denied)).toBe(0);
    events = await waitForCount(identity, 'capability.denied', 1);
    expect(events.find((e) => e.type === 'capability.denied')!.data).toMatchObject({
      request_id: (first.data as { request_id: string }).request_id,
      reason: 'no',
    });
    expect(await listedState(identity)).toBe('running');
    expect((await h.docker.getContainer(`cb-${identity}-agent`).inspect()).State.Running).toBe(true);
    // Nothing pending any more: a second decision has nothing to decide.
    const nothing = await h.cli(['approve', identity]);
    expect(nothing.code).toBe(1);
    expect(nothing.stderr).toContain('no pending capability request');

    expect(
      (
        await requestCapability(h.docker, identity, {
          kind: 'egress',
          host: 'newhost.test',
          port: 443,
          reason: 'really need it',
        })
      ).code,
    ).toBe(0);
    await waitForCount(identity, 'capability.requested', 2);
    expect(await listedState(identity)).toBe('running (capability pending)');

    const approved = await h.cli(['approve', identity]);
    expect(approved.code, show(approved)).toBe(0);
    // An egress approval applies to the running bottle: no snapshot, no preservation, no resume needed.
    expect(approved.stdout).toContain('approved; newhost.test is allowed now in the running bottle (no resume needed)');
    events = await h.log.read(identity);
    const types = events.map((e) => e.type);
    expect(types.slice(types.indexOf('capability.approved'))).not.toContain('bottle.preserved');
    expect(events.find((e) => e.type === 'egress.granted')!.data).toMatchObject({ entry: 'newhost.test', live: true });
    expect(await listedState(identity)).toBe('running');
    expect((await h.docker.getContainer(`cb-${identity}-agent`).inspect()).State.Running).toBe(true);
    const twice = await h.cli(['approve', identity], { timeoutMs: 30_000 });
    expect(twice.code, show(twice)).toBe(1);
    expect(twice.stderr).toContain(`${identity} is running and has no pending capability request`);
    // Kept for later resumes: a stopped and resumed bottle launches with the host on its allowlist.
    expect((await h.cli(['stop', identity])).code).toBe(0);
    expect(await listedState(identity)).toBe('preserved');

    const resumed = await h.cli(['resume', identity, '--detach']);
    expect(resumed.code, show(resumed)).toBe(0);
    events = await h.log.read(identity);
    const resume = [...events].reverse().find((e) => e.type === 'bottle.resume_requested')!;
    expect((resume.data as { plan: { hosts: string[] } }).plan.hosts).toContain('newhost.test');
    const start = events.find((e) => e.type === 'bottle.start_requested')!;
    expect((start.data as { plan: { hosts: string[] } }).plan.hosts).not.toContain('newhost.test');
    // And the resumed gateway enforces that allowlist.
    await waitForCount(identity, 'agent.started', 2);
    const gateway = h.docker.getContainer(
      (resume.data as { plan: { containers: { gateway: string } } }).plan.containers.gateway,
    );
    const config = await execIn(gateway, ['cat', GATEWAY_CONFIG_PATH]);
    expect(config.code).toBe(0);
    expect((JSON.parse(config.output) as { allow: string[] }).allow).toContain('newhost.test');
    expect((await h.cli(['stop', identity])).code).toBe(0);
  });
});

describe('dockerfile capability', () => {
  it('approve writes state/<id>/Dockerfile; resume builds it and the resumed container has the marker', async () => {
    const { identity, plan } = await startAsker();
    const dockerfile = `FROM ${plan.image.tag}\nRUN echo built-by-capability > /home/node/.capability-marker\n`;
    expect(
      (await requestCapability(h.docker, identity, { kind: 'dockerfile', dockerfile, reason: 'need a marker' })).code,
    ).toBe(0);
    await waitForCount(identity, 'capability.requested', 1);

    const approved = await h.cli(['approve', identity]);
    expect(approved.code, show(approved)).toBe(0);
    const written = join(h.home, 'state', identity, 'Dockerfile');
    expect(readFileSync(written, 'utf8')).toBe(dockerfile);

    const resumed = await h.cli(['resume', identity, '--detach'], { timeoutMs: 300_000 });
    expect(resumed.code, show(resumed)).toBe(0);
    const events = await h.log.read(identity);
    const resume = [...events].reverse().find((e) => e.type === 'bottle.resume_requested')!;
    const resumedImage = (resume.data as { plan: { image: { tag: string; dockerfile: string } } }).plan.image;
    // The plan names the worker's own state Dockerfile by a marker; the worker builds from that file.
    expect(resumedImage.dockerfile).toBe('state:Dockerfile');
    expect(resumedImage.tag).not.toBe(plan.image.tag);
    const agent = h.docker.getContainer(`cb-${identity}-agent`);
    expect((await agent.inspect()).Config.Image).toBe(resumedImage.tag);
    expect(await execIn(agent, ['cat', '/home/node/.capability-marker'], { user: 'node' })).toEqual({
      code: 0,
      output: 'built-by-capability\n',
    });
    expect((await h.cli(['stop', identity])).code).toBe(0);
    expect(existsSync(written)).toBe(true);
  });
});
