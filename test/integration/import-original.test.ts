import { cpSync, existsSync, readFileSync, rmSync, writeFileSync, mkdtempSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agentImageSource, imagePlan } from '../../src/images/sources.js';
import { PIN_DEFAULT_HOSTS, startHarness, type BottleHarness } from '../support/cli-harness.js';
import { execIn } from '../support/docker.js';
import { show } from '../support/workers.js';

/**
 * State folders the original (Python) claude-bottle preserved (test/fixtures/original-state, laid out as it
 * wrote them: metadata.json, Dockerfile, transcript/, .preserve) are listed as importable; `resume` imports
 * one and relaunches it with its Dockerfile and transcript; a malformed one gets one line and stays.
 */

const FIXTURES = join(import.meta.dirname, '../fixtures/original-state');
// The fixture's Dockerfile builds FROM this local tag (nothing can be pulled here): the built-in agent image.
const ORIGINAL_BASE = 'claude-bottle-test/original-base:1';

let h: BottleHarness;
let manifest: string;
let cwd: string;
const docker = new Docker();

beforeAll(async () => {
  h = await startHarness();
  const base = await imagePlan(agentImageSource({}));
  const [repo, tag] = ORIGINAL_BASE.split(':');
  await docker.getImage(base.tag).tag({ repo, tag });
  cwd = mkdtempSync(join(tmpdir(), 'cb-import-cwd-'));
  chmodSync(cwd, 0o777);
  cpSync(FIXTURES, join(h.home, 'state'), { recursive: true });
  // The original recorded an absolute path of its machine; this machine's stand-in for it.
  const metadata = join(h.home, 'state', 'importer-0r1g1', 'metadata.json');
  writeFileSync(metadata, readFileSync(metadata, 'utf8').replace('"/tmp"', JSON.stringify(cwd)));
  manifest = h.writeManifest({
    bottles: [{ name: 'box', egress: { allow: [] }, extra_hosts: PIN_DEFAULT_HOSTS }],
    agents: [
      {
        name: 'importer',
        bottle: 'box',
        command: ['bash', '-c', 'trap "exit 143" TERM; sleep 600 & wait'],
      },
    ],
  });
});
afterAll(async () => {
  await h?.cleanup();
  await docker
    .getImage(ORIGINAL_BASE)
    .remove()
    .catch(() => undefined);
  rmSync(cwd, { recursive: true, force: true });
});

describe("the original tool's preserved bottles", () => {
  it('are importable; a malformed one gets one line; a good one resumes with Dockerfile and transcript', async () => {
    const listed = await h.cli(['list', '--all', '--format', 'json']);
    expect(listed.code, show(listed)).toBe(0);
    const rows = JSON.parse(listed.stdout) as Array<{ identity: string; state: string; agent: string }>;
    expect(rows.filter((r) => r.state === 'importable').map((r) => [r.identity, r.agent])).toEqual([
      ['importer-0r1g1', 'importer'],
      ['importer-0r1g2', 'importer'],
    ]);

    const broken = await h.cli(['--manifest', manifest, 'resume', 'importer-0r1g2', '--detach']);
    expect(broken.code, show(broken)).toBe(1);
    expect(broken.stderr.trim().split('\n')).toHaveLength(1);
    expect(broken.stderr).toContain('cannot import importer-0r1g2');
    expect(broken.stderr).toContain('cwd');
    expect(existsSync(join(h.home, 'state', 'importer-0r1g2', 'metadata.json'))).toBe(true);
    expect(await h.log.exists('importer-0r1g2')).toBe(false);

    const resumed = await h.cli(['--manifest', manifest, 'resume', 'importer-0r1g1', '--detach']);
    expect(resumed.code, show(resumed)).toBe(0);
    const events = await h.waitForEvent('importer-0r1g1', 'agent.started', 300_000);
    expect(events[0]).toMatchObject({
      type: 'bottle.imported',
      data: { agent: 'importer', cwd, copy_cwd: false, started_at: '2026-05-25T11:05:23.412Z', transcript: true },
    });
    expect(events.map((e) => e.type)).toContain('bottle.resume_requested');

    const agent = h.docker.getContainer('cb-importer-0r1g1-agent');
    const seen = await execIn(
      agent,
      ['sh', '-c', 'cat /home/node/.claude/projects/x/s.jsonl /home/node/.original-marker'],
      { user: 'node' },
    );
    expect(seen).toEqual({ code: 0, output: 'hello from the original\nfrom-the-original\n' });

    expect((await h.cli(['stop', 'importer-0r1g1'])).code).toBe(0);
    const after = JSON.parse((await h.cli(['list', '--all', '--format', 'json'])).stdout) as typeof rows;
    expect(after.find((r) => r.identity === 'importer-0r1g1')?.state).toMatch(/preserved/);
  });
});
