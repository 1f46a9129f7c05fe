import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UPSTREAM_CA_ENV } from '../../src/effects/upstream-ca.js';
import type { LifecycleEvent } from '../../src/events/schema.js';
import { resourceNames } from '../../src/shared/names.js';
import { identityFrom, PIN_DEFAULT_HOSTS, startHarness, type BottleHarness } from '../support/cli-harness.js';
import { execIn } from '../support/docker.js';
import { GIT_HOST, startPackageStandIns, type PackageStandIns } from '../support/package-standins.js';
import { show } from '../support/workers.js';

/**
 * A method/path grant, end to end in a real bottle: the agent's push is refused by the
 * allowlist entry's path rule, the 403 names the `bottle-request` command that asks for
 * exactly that path, the agent runs it, the operator sees the scope and approves, and the
 * agent's next request passes in the same running bottle; a resume keeps the grant.
 * Traffic goes only to the HTTPS stand-in in this process, reached as git.test.
 */

const PUSH_PATH = '/repo.git/git-receive-pack';
const dir = mkdtempSync(join(tmpdir(), 'cb-method-path-grant-'));
let standIns: PackageStandIns;
let h: BottleHarness;
let identity: string;

beforeAll(async () => {
  standIns = await startPackageStandIns(dir);
  h = await startHarness({ env: { [UPSTREAM_CA_ENV]: standIns.caFile } });
  const manifest = h.writeManifest({
    bottles: [
      {
        name: 'granted',
        egress: { allow: [{ host: `${GIT_HOST}:${standIns.port}`, paths: ['/**', '!/**/git-receive-pack'] }] },
        extra_hosts: { [GIT_HOST]: 'host-gateway', ...PIN_DEFAULT_HOSTS },
      },
    ],
    agents: [{ name: 'sleeper', bottle: 'granted', command: ['sleep', '900'] }],
  });
  identity = identityFrom(await h.cli(['--manifest', manifest, 'start', 'sleeper', '--detach']));
  await h.waitForEvent(identity, 'agent.started');
}, 300_000);

afterAll(async () => {
  await h?.cleanup();
  await standIns?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function asAgent(script: string): Promise<{ code: number; output: string }> {
  const agent = h.docker.getContainer(resourceNames(identity).agentContainer);
  return execIn(agent, ['bash', '-c', script], { user: '1000:1000' });
}

/** The agent's POST of the push path: the status code last, after the body. */
function push(): Promise<{ code: number; output: string }> {
  const url = `https://${GIT_HOST}:${standIns.port}${PUSH_PATH}`;
  return asAgent(`curl -sS --max-time 20 -X POST --data-binary '' -w '\\n%{http_code}' ${url}`);
}

async function until<T>(what: string, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const found = await probe();
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

const events = (): Promise<LifecycleEvent[]> => h.log.read(identity);

describe('a method/path grant asked with bottle-request', () => {
  it('is named by the refusal, shown to the operator, applied live and kept for resumes', async () => {
    const refused = await push();
    const [body, status] = [
      refused.output.slice(0, refused.output.lastIndexOf('\n')),
      refused.output.split('\n').at(-1),
    ];
    expect(status, refused.output).toBe('403');
    const denial = JSON.parse(body) as { reason: string; ask?: string };
    expect(denial.reason).toBe('path_rule');
    expect(denial.ask).toBe(
      `bottle-request egress ${GIT_HOST}:${standIns.port} --path '${PUSH_PATH}' --reason 'why the task needs it'`,
    );
    expect(standIns.seen.filter((s) => s.path === PUSH_PATH)).toEqual([]);

    // The agent asks as the refusal says; bottle-request waits for the decision in the background.
    const ask = denial.ask!.replace(`'why the task needs it'`, `'the task pushes its fix'`);
    const asked = await asAgent(`nohup ${ask} > /tmp/asked.log 2>&1 &`);
    expect(asked.code, asked.output).toBe(0);
    await until('the request', async () =>
      (await events()).some((e) => e.type === 'capability.requested') ? true : undefined,
    );
    const requested = (await events()).find((e) => e.type === 'capability.requested')!;
    expect(requested.data).toMatchObject({ host: GIT_HOST, port: standIns.port, paths: [PUSH_PATH] });
    const listed = await h.cli(['list', '--format', 'json']);
    expect(listed.stdout).toContain(`paths ${PUSH_PATH}`);

    const approved = await h.cli(['approve', identity]);
    expect(approved.code, show(approved)).toBe(0);
    expect(approved.stdout).toContain(`${GIT_HOST}:${standIns.port} paths ${PUSH_PATH} is allowed now`);
    const granted = (await events()).find((e) => e.type === 'egress.granted')!;
    expect(granted.data).toMatchObject({ live: true, paths: [PUSH_PATH] });
    const told = await until('the agent told', async () => {
      const log = await asAgent('cat /tmp/asked.log');
      return log.output.includes('approved') ? log.output : undefined;
    });
    expect(told).toContain('approved');

    // The same running bottle: the next push passes the gateway and reaches the stand-in.
    const passed = await push();
    expect(passed.output.split('\n').at(-1), passed.output).not.toBe('403');
    expect(standIns.seen.filter((s) => s.path === PUSH_PATH && s.method === 'POST')).toHaveLength(1);

    // Kept for resumes: the resumed plan's entry carries the grant, and its gateway applies it.
    expect((await h.cli(['stop', identity])).code).toBe(0);
    const resumed = await h.cli(['resume', identity, '--detach']);
    expect(resumed.code, show(resumed)).toBe(0);
    const resume = [...(await events())].reverse().find((e) => e.type === 'bottle.resume_requested')!;
    const entries = (resume.data as { plan: { egress_entries: Array<{ host: string; grants?: unknown[] }> } }).plan
      .egress_entries;
    expect(entries.find((e) => e.host === `${GIT_HOST}:${standIns.port}`)?.grants).toEqual([{ paths: [PUSH_PATH] }]);
    await until('the resumed agent', async () =>
      (await events()).filter((e) => e.type === 'agent.started').length >= 2 ? true : undefined,
    );
    const afterResume = await push();
    expect(afterResume.output.split('\n').at(-1), afterResume.output).not.toBe('403');
    expect(standIns.seen.filter((s) => s.path === PUSH_PATH && s.method === 'POST')).toHaveLength(2);
    expect((await h.cli(['stop', identity])).code).toBe(0);
  }, 400_000);
});
