import { homedir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ManifestError } from '../../../src/manifest/errors.js';
import { findAgent, loadManifest, manifestPathFrom } from '../../../src/manifest/load.js';
import { UsageError } from '../../../src/shared/errors.js';
import { validManifestJson, writeManifestDir, type ManifestDir } from '../../support/manifest-fixtures.js';

let made: ManifestDir[] = [];
afterEach(async () => {
  await Promise.all(made.map((m) => m.cleanup()));
  made = [];
});
async function manifestDir(...args: Parameters<typeof writeManifestDir>) {
  const m = await writeManifestDir(...args);
  made.push(m);
  return m;
}

describe('manifestPathFrom', () => {
  it('prefers --manifest over CLAUDE_BOTTLE_MANIFEST over ~/claude-bottle.json', () => {
    const env = { CLAUDE_BOTTLE_MANIFEST: '/etc/from-env.json' };
    expect(manifestPathFrom({ path: '/srv/flag.json', env })).toBe('/srv/flag.json');
    expect(manifestPathFrom({ env })).toBe('/etc/from-env.json');
    expect(manifestPathFrom({ env: {} })).toBe(join(homedir(), 'claude-bottle.json'));
  });

  it('expands ~ in the manifest path', () => {
    expect(manifestPathFrom({ path: '~/m.json', env: {} })).toBe(join(homedir(), 'm.json'));
  });
});

describe('loadManifest', () => {
  it('names the missing path and the three ways to point at a manifest', async () => {
    const err = await loadManifest({ path: '/nonexistent/cb/claude-bottle.json', env: {} }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect((err as Error).message).toMatch(/manifest \/nonexistent\/cb\/claude-bottle.json not found/);
    expect((err as Error).message).toMatch(/--manifest PATH/);
    expect((err as Error).message).toMatch(/CLAUDE_BOTTLE_MANIFEST/);
    expect((err as Error).message).toMatch(/~\/claude-bottle.json/);
  });

  it('reports invalid JSON in a file with its line and column', async () => {
    const m = await manifestDir(() => '{\n  "bottles": [\n    { "name": "dev" }\n    { "name": "other" }\n  ]\n}\n');
    await expect(loadManifest({ path: m.path })).rejects.toThrow(
      /invalid JSON at line 4, column 5: unexpected "\{", expected "," or "\]"/,
    );
  });

  it('reads CLAUDE_BOTTLE_MANIFEST when no --manifest is given', async () => {
    const m = await manifestDir(() => validManifestJson());
    const loaded = await loadManifest({ env: { CLAUDE_BOTTLE_MANIFEST: m.path } });
    expect(loaded.path).toBe(m.path);
    expect(loaded.dir).toBe(m.dir);
  });

  it('resolves referenced files against the manifest folder when they exist', async () => {
    const m = await manifestDir(
      () => {
        const json = validManifestJson();
        json.bottles[0].dockerfile = './bottles/dev.Dockerfile';
        json.bottles[0].ssh = [{ Host: 'github.com', IdentityFile: 'keys/id_ed25519' }];
        json.agents[0].prompt = './prompts/implementer.md';
        json.agents[0].skills = ['./skills/tdd'];
        return json;
      },
      {
        'bottles/dev.Dockerfile': 'FROM debian:bookworm-slim\n',
        'keys/id_ed25519': 'not a real key\n',
        'prompts/implementer.md': 'You implement.\n',
        'skills/tdd/SKILL.md': '---\nname: tdd\n---\n',
      },
    );
    const { manifest } = await loadManifest({ path: m.path });
    expect(manifest.bottles[0].dockerfile).toBe(join(m.dir, 'bottles/dev.Dockerfile'));
    expect(manifest.bottles[0].ssh[0].IdentityFile).toBe(join(m.dir, 'keys/id_ed25519'));
    expect(manifest.agents[0].prompt).toBe(join(m.dir, 'prompts/implementer.md'));
    expect(manifest.agents[0].skills).toEqual([join(m.dir, 'skills/tdd')]);
  });

  it('reports every missing referenced file with its JSON path and absolute path', async () => {
    const m = await manifestDir(
      () => {
        const json = validManifestJson();
        json.bottles[0].dockerfile = './missing.Dockerfile';
        json.bottles[0].ssh = [{ Host: 'github.com', IdentityFile: './keys/nope' }];
        json.agents[0].prompt = './prompts/missing.md';
        json.agents[0].skills = ['./skills/none', './skills/no-skill-file'];
        return json;
      },
      { 'skills/no-skill-file/README.md': 'no SKILL.md here\n' },
    );
    const err = await loadManifest({ path: m.path }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ManifestError);
    const problems = (err as ManifestError).problems;
    expect(problems).toEqual(
      expect.arrayContaining([
        {
          path: 'bottles[0].dockerfile',
          message: expect.stringContaining(`${join(m.dir, 'missing.Dockerfile')} does not exist`),
        },
        {
          path: 'bottles[0].ssh[0].IdentityFile',
          message: expect.stringContaining(`${join(m.dir, 'keys/nope')} does not exist`),
        },
        {
          path: 'agents[0].prompt',
          message: expect.stringContaining(`${join(m.dir, 'prompts/missing.md')} does not exist`),
        },
        {
          path: 'agents[0].skills[0]',
          message: expect.stringContaining(`skill folder ${join(m.dir, 'skills/none')} does not exist`),
        },
        { path: 'agents[0].skills[1]', message: expect.stringContaining('must contain SKILL.md') },
      ]),
    );
    expect(problems).toHaveLength(5);
  });
});

describe('loadManifest with schema problems and missing files', () => {
  it('reports both kinds in one error', async () => {
    const m = await manifestDir(() => {
      const json = validManifestJson();
      json.bottles[0].runtime = 'runsc';
      json.agents[0].prompt = './prompts/missing.md';
      return json;
    });
    const err = (await loadManifest({ path: m.path }).catch((e: unknown) => e)) as ManifestError;
    expect(err).toBeInstanceOf(ManifestError);
    expect(err.problems.map((p) => p.path)).toEqual(['bottles[0].runtime', 'agents[0].prompt']);
    expect(err.message).toMatch(/: 2 problems\n/);
  });
});

describe('findAgent', () => {
  it('returns the agent and its bottle', async () => {
    const m = await manifestDir(() => validManifestJson());
    const loaded = await loadManifest({ path: m.path });
    const { agent, bottle } = findAgent(loaded, 'implementer');
    expect(agent.name).toBe('implementer');
    expect(bottle.name).toBe('dev');
  });

  it('lists the known agents when the name is unknown', async () => {
    const m = await manifestDir(() => validManifestJson());
    const loaded = await loadManifest({ path: m.path });
    expect(() => findAgent(loaded, 'reviewer')).toThrow(/no agent named "reviewer" in .*; known agents: implementer/);
  });
});

describe('examples/claude-bottle.json', () => {
  it('loads cleanly, referenced prompt and skill files included', async () => {
    const path = join(import.meta.dirname, '..', '..', '..', 'examples', 'claude-bottle.json');
    const loaded = await loadManifest({ path, env: {} });
    // The README's main command runs `demo` (no credential needed) or `claude` / `claude-api-key`.
    expect(loaded.manifest.agents.map((a) => a.name)).toEqual([
      'demo',
      'claude',
      'claude-api-key',
      'implementer',
      'reviewer',
    ]);
    expect(findAgent(loaded, 'demo').bottle.name).toBe('sandbox');
    expect(findAgent(loaded, 'demo').bottle.cred_proxy?.routes ?? []).toEqual([]);
    expect(findAgent(loaded, 'implementer').bottle.name).toBe('dev');
  });
});
