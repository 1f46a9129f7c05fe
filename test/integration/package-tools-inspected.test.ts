import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UPSTREAM_CA_ENV } from '../../src/effects/upstream-ca.js';
import type { LifecycleEvent } from '../../src/events/schema.js';
import { resourceNames } from '../../src/shared/names.js';
import { identityFrom, PIN_DEFAULT_HOSTS, startHarness, type BottleHarness } from '../support/cli-harness.js';
import { execIn } from '../support/docker.js';
import {
  GIT_HOST,
  MARKER,
  NPM_HOST,
  PACKAGE,
  PYPI_HOST,
  startPackageStandIns,
  type PackageStandIns,
} from '../support/package-standins.js';

/**
 * Git over HTTPS, npm and pip, unchanged, from inside a real bottle whose
 * gateway inspects their hosts: each tool reaches a local stand-in (its
 * certificate from a throwaway CA the worker is told to trust upstream) with
 * the gateway terminating the agent's TLS and deciding request by request.
 * The git host carries the README's "fetch but not push" recipe, so a push
 * is refused by the gateway, naming the rule, before the stand-in sees it.
 * Traffic goes only to the stand-in in this process, reached by `.test` names.
 */

const NO_PUSH = ['/**', '!/**/git-receive-pack'];
/** Debian's git, Node with npm and pip on the agent's usual user: the built-in image has git only. */
const TOOLS_DOCKERFILE = `FROM debian:bookworm-slim
RUN apt-get update \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \\
      git ca-certificates curl nodejs npm python3-pip \\
 && rm -rf /var/lib/apt/lists/*
RUN groupadd --gid 1000 node \\
 && useradd --uid 1000 --gid node --create-home --home-dir /home/node --shell /bin/bash node
USER node
WORKDIR /home/node
`;

const dir = mkdtempSync(join(tmpdir(), 'cb-package-tools-'));
let standIns: PackageStandIns;
let h: BottleHarness;
let identity: string;

beforeAll(async () => {
  standIns = await startPackageStandIns(dir);
  h = await startHarness({ env: { [UPSTREAM_CA_ENV]: standIns.caFile } });
  const at = (host: string) => `${host}:${standIns.port}`;
  const manifest = h.writeManifest(
    {
      bottles: [
        {
          name: 'tools',
          dockerfile: './tools/Dockerfile',
          egress: { allow: [{ host: at(GIT_HOST), paths: NO_PUSH }, at(NPM_HOST), at(PYPI_HOST)] },
          extra_hosts: {
            [GIT_HOST]: 'host-gateway',
            [NPM_HOST]: 'host-gateway',
            [PYPI_HOST]: 'host-gateway',
            ...PIN_DEFAULT_HOSTS,
          },
        },
      ],
      agents: [{ name: 'sleeper', bottle: 'tools', command: ['sleep', '900'] }],
    },
    { 'tools/Dockerfile': TOOLS_DOCKERFILE },
  );
  const started = await h.cli(['--manifest', manifest, 'start', 'sleeper', '--detach'], { timeoutMs: 900_000 });
  identity = identityFrom(started);
  await h.waitForEvent(identity, 'agent.started', 900_000);
}, 960_000);

afterAll(async () => {
  await h?.cleanup();
  await standIns?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A shell command as the agent user, in the agent's container, with the bottle's own environment. */
async function asAgent(script: string): Promise<{ code: number; output: string }> {
  const agent = h.docker.getContainer(resourceNames(identity).agentContainer);
  return execIn(agent, ['bash', '-lc', script], { user: '1000:1000' });
}

async function events(): Promise<LifecycleEvent[]> {
  const shown = await h.cli(['events', identity, '--format', 'json']);
  expect(shown.code).toBe(0);
  return shown.stdout
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as LifecycleEvent);
}

interface Decision {
  host: string;
  method: string;
  reason: string;
  detail?: { class: string; rule: string; where: string };
}

/** The gateway's decisions about one host, waited for until `enough` holds (they arrive in batches). */
async function decisionsFor(host: string, enough: (d: Decision[]) => boolean): Promise<Decision[]> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const found = (await events())
      .filter((e) => e.type === 'egress.allowed' || e.type === 'egress.denied')
      .map((e) => ({ ...(e.data as Decision), type: e.type }))
      .filter((d) => d.host === host);
    if (enough(found) || Date.now() > deadline) return found;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

/**
 * Inspected means the gateway decided each request inside the TLS (a method such as GET, never only the
 * CONNECT of a tunnel it does not read) and the stand-in answered those requests.
 */
async function expectInspected(host: string): Promise<void> {
  const decisions = await decisionsFor(host, (d) => d.some((x) => x.method !== 'CONNECT'));
  expect(decisions.length, JSON.stringify(decisions)).toBeGreaterThan(0);
  expect(decisions.filter((d) => d.method === 'CONNECT')).toEqual([]);
  expect(decisions.filter((d) => d.detail?.class === 'not_inspected')).toEqual([]);
  expect(standIns.seen.filter((s) => s.host === host).length).toBeGreaterThan(0);
}

describe('package tools through an inspecting gateway', () => {
  it('git clones over HTTPS', async () => {
    const url = `https://${GIT_HOST}:${standIns.port}/repo.git`;
    const cloned = await asAgent(`git clone -q ${url} /tmp/repo && cat /tmp/repo/README`);
    expect(cloned.code, cloned.output).toBe(0);
    expect(cloned.output).toContain(MARKER);
    const gitSeen = standIns.seen.filter((s) => s.host === GIT_HOST);
    expect(gitSeen.map((s) => `${s.method} ${s.path} ${s.status}`)).toEqual(
      expect.arrayContaining(['GET /repo.git/info/refs 200', 'POST /repo.git/git-upload-pack 200']),
    );
    await expectInspected(GIT_HOST);
  }, 120_000);

  it('refuses a git push by the path rule, naming it, before the stand-in sees the pack', async () => {
    const before = execFileSync('git', ['rev-parse', 'main'], { cwd: standIns.bareRepo }).toString().trim();
    const pushed = await asAgent(
      'cd /tmp/repo && echo more >> README && git -c user.name=a -c user.email=a@example.invalid commit -qam more' +
        ' && git push origin main',
    );
    expect(pushed.code, pushed.output).not.toBe(0);
    expect(pushed.output).toMatch(/403/);
    const refused = await decisionsFor(GIT_HOST, (d) => d.some((x) => x.reason === 'path_rule'));
    expect(refused.find((d) => d.reason === 'path_rule')).toMatchObject({
      method: 'POST',
      detail: { rule: expect.stringContaining('!/**/git-receive-pack') as unknown, where: 'url' },
    });
    expect(standIns.seen.filter((s) => s.path.endsWith('/git-receive-pack'))).toEqual([]);
    const after = execFileSync('git', ['rev-parse', 'main'], { cwd: standIns.bareRepo }).toString().trim();
    expect(after).toBe(before);
  }, 120_000);

  it('npm installs a package from a registry stand-in', async () => {
    const registry = `https://${NPM_HOST}:${standIns.port}/`;
    const installed = await asAgent(
      `mkdir -p /tmp/npm-project && cd /tmp/npm-project && npm install ${PACKAGE} --registry ${registry}` +
        ' --no-audit --no-fund --no-update-notifier --loglevel=error' +
        ` && node -e "console.log(require('${PACKAGE}'))"`,
    );
    expect(installed.code, installed.output).toBe(0);
    expect(installed.output).toContain(MARKER);
    expect(standIns.seen.filter((s) => s.host === NPM_HOST).map((s) => `${s.method} ${s.status}`)).toEqual([
      'GET 200',
      'GET 200',
    ]);
    await expectInspected(NPM_HOST);
  }, 180_000);

  it('pip downloads a wheel from a simple-index stand-in', async () => {
    const index = `https://${PYPI_HOST}:${standIns.port}/simple/`;
    const wheel = `${PACKAGE.replace('-', '_')}-1.0.0-py3-none-any.whl`;
    const downloaded = await asAgent(
      `python3 -m pip download ${PACKAGE} --index-url ${index} --no-deps --disable-pip-version-check` +
        ` -d "$HOME/wheels" && test -s "$HOME/wheels/${wheel}"`,
    );
    expect(downloaded.code, downloaded.output).toBe(0);
    expect(downloaded.output).toContain(`Saved /home/node/wheels/${wheel}`);
    expect(standIns.seen.filter((s) => s.host === PYPI_HOST).map((s) => `${s.method} ${s.path}`)).toEqual(
      expect.arrayContaining([`GET /simple/${PACKAGE}/`]),
    );
    await expectInspected(PYPI_HOST);
  }, 180_000);
});
