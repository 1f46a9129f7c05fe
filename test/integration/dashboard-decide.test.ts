import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LifecycleEvent } from '../../src/events/schema.js';
import { identityFrom, PIN_DEFAULT_HOSTS, REPO, startHarness, type BottleHarness } from '../support/cli-harness.js';
import { requestCapability as requestAsAgent } from '../support/agent-requests.js';
import { execIn } from '../support/docker.js';
import { bottleCommandLine, TestTerminals, type TerminalRun } from '../support/tmux.js';

/**
 * Deciding a capability request in the dashboard, driven through a real tmux
 * pane of 80x24: the pending Dockerfile request is reviewed as a diff and
 * approved with a key (the resume command appears), and a deny asks for a
 * reason that the deny event carries to the agent.
 */
let h: BottleHarness;
const terminals = new TestTerminals('cbdecide');
let dashboard: TerminalRun;
const AGENT = ['bash', '-c', 'trap "exit 143" TERM; sleep 600 & wait'];

beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  terminals.close();
  await h?.cleanup();
});

const screen = () => dashboard.visible();

/** Long lines are wrapped to the pane's width, each continuation marked; joined, they give the line back. */
const unwrapped = (text: string) => text.replace(/\n(?:↳ |[-+ ]↳)/g, '');

/** The pane once it matches, as drawn or with its wrapped lines joined. */
async function screenShows(pattern: RegExp, timeoutMs = 60_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let text = '';
  while (Date.now() < deadline) {
    text = screen();
    if (pattern.test(text) || pattern.test(unwrapped(text))) return text;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`screen never matched ${pattern}:\n${text}`);
}

const keys = (...k: string[]) => dashboard.keys(...k);

/** Moves the selection down, then up, until the pending request shown is that bottle's. */
async function selectPending(identity: string): Promise<string> {
  const pending = new RegExp(`PENDING \\(${identity}\\)`);
  for (const key of ['Down', 'Up', 'Up']) {
    keys(key);
    try {
      return await screenShows(pending, 5_000);
    } catch {
      // Not this row: try the next move.
    }
  }
  return screenShows(pending);
}
const typed = (text: string) => dashboard.type(text);

/** Asks from inside the agent; returns the request's id once the event log, which the dashboard reads, has it. */
async function requestCapability(identity: string, body: Record<string, unknown>): Promise<string> {
  const asked = await requestAsAgent(h.docker, identity, body);
  expect(asked.code, asked.output).toBe(0);
  const { request_id: requestId } = JSON.parse(asked.output) as { request_id: string };
  const deadline = Date.now() + 60_000;
  const logged = async () =>
    (await h.log.read(identity)).some((e) => e.type === 'capability.requested' && e.data.request_id === requestId);
  while (!(await logged())) {
    if (Date.now() > deadline) throw new Error(`${identity}: request ${requestId} never reached the event log`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return requestId;
}

/** The decision as the agent learns it: the gateway's answer to GET /_bottle/capability/ID, once decided. */
async function askDecision(identity: string, requestId: string): Promise<{ status: string; reason?: string }> {
  const script = 'gw=${HTTPS_PROXY#http://}; gw=${gw%:*}; curl -s "http://$gw:3129/_bottle/capability/$ID?wait=30"';
  const agent = h.docker.getContainer(`cb-${identity}-agent`);
  const asked = await execIn(agent, ['sh', '-c', script], { user: 'node', env: [`ID=${requestId}`] });
  expect(asked.code, asked.output).toBe(0);
  return JSON.parse(asked.output) as { status: string; reason?: string };
}

function dataOf(events: LifecycleEvent[], type: string): Record<string, unknown> | undefined {
  return [...events].reverse().find((e) => e.type === type)?.data as Record<string, unknown> | undefined;
}

describe('bottle dashboard decides capability requests', () => {
  it('80x24 tmux: Dockerfile diff approved shows resume; a deny reason reaches the agent; egress is live', async () => {
    const manifest = h.writeManifest(
      {
        bottles: [
          { name: 'box', egress: { allow: [] }, extra_hosts: PIN_DEFAULT_HOSTS },
          { name: 'broken', dockerfile: './broken.Dockerfile', egress: { allow: [] }, extra_hosts: PIN_DEFAULT_HOSTS },
        ],
        agents: [
          { name: 'builder', bottle: 'box', command: AGENT },
          { name: 'surfer', bottle: 'box', command: AGENT },
          { name: 'unbuildable', bottle: 'broken', command: AGENT },
        ],
      },
      { 'broken.Dockerfile': 'FROM debian:bookworm-slim\nRUN echo this image cannot be built && exit 3\n' },
    );
    // A launch that fails: listed with its resume command, as a preserved bottle is.
    const failed = identityFrom(await h.cli(['--manifest', manifest, 'start', 'unbuildable', '--detach']));
    await h.waitForEvent(failed, 'bottle.failed');
    const builder = identityFrom(await h.cli(['--manifest', manifest, 'start', 'builder', '--detach']));
    const surfer = identityFrom(await h.cli(['--manifest', manifest, 'start', 'surfer', '--detach']));
    await h.waitForEvent(builder, 'agent.started');
    await h.waitForEvent(surfer, 'agent.started');

    // The built-in Dockerfile with one line added near its top: the diff shows it among unchanged lines.
    const current = readFileSync(join(REPO, 'images', 'agent', 'Dockerfile'), 'utf8').split('\n');
    const wanted = [current[0], 'RUN echo added-by-request > /etc/dashboard-marker', ...current.slice(1)].join('\n');
    const dockerfileId = await requestCapability(builder, {
      kind: 'dockerfile',
      dockerfile: wanted,
      reason: 'a marker\tplease',
    });
    const egressId = await requestCapability(surfer, {
      kind: 'egress',
      host: 'wanted.test',
      port: 443,
      reason: 'docs',
    });

    dashboard = terminals.open(bottleCommandLine(h, ['dashboard']), { cwd: h.project, columns: 80, rows: 24 });
    let shown = await screenShows(new RegExp(`PENDING \\(${builder}\\)`));
    expect(shown).toContain(`${builder}`);
    expect(shown).toContain(`${surfer}`);
    expect(shown).toMatch(/also pending: /);
    expect(shown).toMatch(new RegExp(`${failed} +unbuildable +failed\\n +resume: bottle resume ${failed}\\n`));
    // A control character the agent wrote (the gateway lets a tab through) is spelled out, never drawn.
    expect(shown).toContain(`${dockerfileId} dockerfile: a marker\\tplease`);

    // Review: the whole request, the Dockerfile as a diff against the one the bottle runs.
    keys('Enter');
    shown = await screenShows(/a approve {2}d deny/);
    expect(shown).toContain(`REVIEW ${builder} request ${dockerfileId}`);
    expect(shown).toContain('reason: a marker\\tplease');
    expect(shown).toContain('requested Dockerfile, as a diff against the current one (the built-in agent');
    expect(shown).toContain(`  ${current[0]}`);
    expect(shown).toContain('+ RUN echo added-by-request > /etc/dashboard-marker');
    // The frame fits the pane: its first line has not scrolled off.
    expect(shown.split('\n')[0]).toBe(`REVIEW ${builder} request ${dockerfileId}`);
    // The rest of the diff is a scroll away.
    keys('PageDown');
    await screenShows(/lines (?!1-)\d+-\d+ of/);
    keys('End');
    await screenShows(/ {2}WORKDIR \/home\/node/);

    keys('a');
    shown = await screenShows(new RegExp(`^ {2}bottle resume ${builder}\\s*$`, 'm'), 120_000);
    expect(unwrapped(shown)).toContain(
      `approved ${dockerfileId}; ${builder} was rebuilt into saved state. Relaunch with:`,
    );
    // Nothing is pending on a preserved bottle: the approved request is gone from the pending list.
    expect(shown).not.toContain(`PENDING (${builder})`);
    let events = await h.log.read(builder);
    expect(dataOf(events, 'capability.approved')).toMatchObject({ request_id: dockerfileId });
    expect(dataOf(events, 'bottle.preserved')).toMatchObject({ reason: 'capability' });
    expect(readFileSync(join(h.home, 'state', builder, 'Dockerfile'), 'utf8')).toBe(wanted);
    // The preserved bottle is listed with its resume command.
    await screenShows(new RegExp(`resume: bottle resume ${builder}`));

    // Deny the other bottle's request: select it, review, d, type the reason, Enter. Bottles that need
    // the operator sort first, so where it stands depends on the ordering: move until it is selected.
    shown = await selectPending(surfer);
    keys('Enter');
    shown = await screenShows(new RegExp(`REVIEW ${surfer} request ${egressId}`));
    expect(unwrapped(shown)).toContain(`request ${egressId} from ${surfer}: egress wanted.test:443`);
    keys('d');
    await screenShows(/deny reason \(told to the agent\):/);
    typed('use the mirror instead');
    await screenShows(/deny reason \(told to the agent\): use the mirror instead/);
    keys('Enter');
    await screenShows(new RegExp(`denied ${egressId}: use the mirror\\s*instead`));
    events = await h.log.read(surfer);
    expect(dataOf(events, 'capability.denied')).toMatchObject({
      request_id: egressId,
      reason: 'use the mirror instead',
    });
    // The agent hears the operator's reason from the gateway.
    expect(await askDecision(surfer, egressId)).toMatchObject({ status: 'denied', reason: 'use the mirror instead' });
    // A deny keeps the bottle running.
    expect((await h.docker.getContainer(`cb-${surfer}-agent`).inspect()).State.Running).toBe(true);
    await screenShows(new RegExp(`${surfer} +surfer +running\\s*$`, 'm'));

    // An approved egress request applies to the running bottle: the dashboard says so, and no resume is offered.
    const laterId = await requestCapability(surfer, { kind: 'egress', host: 'later.test', port: 443, reason: 'docs' });
    await screenShows(new RegExp(`PENDING \\(${surfer}\\)`));
    keys('Enter');
    await screenShows(new RegExp(`REVIEW ${surfer} request ${laterId}`));
    keys('a');
    shown = await screenShows(/is allowed now in the running/, 120_000);
    expect(unwrapped(shown)).toContain(`approved ${laterId}: later.test is allowed now in the running ${surfer}`);
    expect(shown).not.toMatch(new RegExp(`^ {2}bottle resume ${surfer}`, 'm'));
    expect((await h.docker.getContainer(`cb-${surfer}-agent`).inspect()).State.Running).toBe(true);

    keys('q');
    expect(await dashboard.exitCode()).toBe(0);
    expect((await h.cli(['stop', surfer])).code).toBe(0);
  }, 400_000);
});
