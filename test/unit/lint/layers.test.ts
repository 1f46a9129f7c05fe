import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ESLint } from 'eslint';
import tseslint from 'typescript-eslint';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * The layering and the machine's purity are lint rules (eslint.config.mjs); these plant one
 * violation of each into a file of the layer it breaks and check ESLint reports it, so a
 * rule that stops matching (a renamed folder, a broken pattern) fails here, not silently.
 */
const ROOT = join(import.meta.dirname, '../../..');
const CONFIG = join(ROOT, 'eslint.config.mjs');
// Loading typescript-eslint and the import plugin takes a while on a busy machine.
const SLOW = 60_000;

/**
 * Planted files exist in no TypeScript project, and import names they never use: the type-aware rules and
 * the unused-names rule, which the layering does not rely on, stay off.
 */
const WITHOUT_TYPES = {
  files: ['**/*.ts'],
  ...tseslint.configs.disableTypeChecked,
  rules: { ...tseslint.configs.disableTypeChecked.rules, '@typescript-eslint/no-unused-vars': 'off' as const },
};

let eslint: ESLint;
beforeAll(() => {
  // The cycle rule follows every import through src; it has its own test below.
  eslint = new ESLint({
    cwd: ROOT,
    overrideConfigFile: CONFIG,
    overrideConfig: [WITHOUT_TYPES, { rules: { 'import-x/no-cycle': 'off' } }],
  });
});

async function rulesBroken(file: string, code: string, lint = eslint, root = ROOT): Promise<string[]> {
  const [result] = await lint.lintText(code, { filePath: join(root, file) });
  expect(result.messages.filter((m) => m.fatal)).toEqual([]);
  return result.messages.map((m) => m.ruleId ?? 'parse error');
}

const imports = 'no-restricted-imports';
const loads = 'no-restricted-syntax';
const pureImports = '@typescript-eslint/no-restricted-imports';

describe('the layering rules report an import into a higher layer', () => {
  it.each([
    ['the CLI imports the worker', 'src/cli/planted.ts', `import { x } from '../worker/worker.js';`, imports],
    [
      'a CLI command imports the worker',
      'src/cli/commands/planted.ts',
      `export * from '../../worker/main.js';`,
      imports,
    ],
    ['the CLI loads the worker lazily', 'src/cli/planted.ts', `await import('../worker/worker.js');`, loads],
    ['the CLI names a worker type', 'src/cli/planted.ts', `let w: typeof import('../worker/main.js');`, loads],
    ['the CLI imports an effect', 'src/cli/planted.ts', `import { x } from '../effects/state.js';`, imports],
    ['the CLI imports the Docker client', 'src/cli/planted.ts', `import Docker from 'dockerode';`, imports],
    ['effects import the worker', 'src/effects/planted.ts', `import type { X } from '../worker/engine.js';`, imports],
    ['effects import the CLI', 'src/effects/docker/planted.ts', `import { x } from '../../cli/session.js';`, imports],
    ['the worker imports the CLI', 'src/worker/planted.ts', `import { x } from '../cli/follow.js';`, imports],
    ['the engine imports an effect', 'src/engine/planted.ts', `import { x } from '../effects/index.js';`, imports],
    [
      'the event store imports the machine',
      'src/event-store/planted.ts',
      `import { x } from '../machines/index.js';`,
      imports,
    ],
    ['images import the engine', 'src/images/planted.ts', `import { x } from '../engine/redis.js';`, imports],
    ['blobs import effects', 'src/blobs/planted.ts', `import { x } from '../effects/state.js';`, imports],
    ['shared imports the plan', 'src/shared/planted.ts', `import { x } from '../plan/schema.js';`, imports],
    ['the manifest imports the plan', 'src/manifest/planted.ts', `import { x } from '../plan/resolve.js';`, imports],
    ['the plan imports the machine', 'src/plan/planted.ts', `import { x } from '../machines/index.js';`, imports],
    ['events import the machine', 'src/events/planted.ts', `import type { X } from '../machines/fold.js';`, imports],
    ['the gateway imports the worker', 'src/gateway/planted.ts', `import { x } from '../worker/engine.js';`, imports],
    ['the network watch imports the CLI', 'src/netwatch/planted.ts', `import { x } from '../cli/main.js';`, imports],
  ])(
    '%s',
    async (_what, file, code, rule) => {
      expect(await rulesBroken(file, code)).toContain(rule);
    },
    SLOW,
  );
});

describe('the pure core (the machine and what it loads) reports I/O, clock and randomness', () => {
  it.each([
    ['imports the file system', `import { readFileSync } from 'node:fs';`, pureImports],
    ['imports a Redis type', `import type { Redis } from 'ioredis';`, pureImports],
    ['imports node:crypto', `import { randomUUID } from 'node:crypto';`, pureImports],
    ['imports a plan module outside the core', `import { x } from '../plan/resolve.js';`, pureImports],
    ['loads a module at run time', `const cp = await import('child_process');`, loads],
    ['reads the clock', `const now = Date.now();`, 'no-restricted-globals'],
    ['makes a date', `const d = new Date();`, 'no-restricted-globals'],
    ['reads the high-resolution clock', `const t = performance.now();`, 'no-restricted-globals'],
    ['reads the process clock', `const t = process.hrtime();`, 'no-restricted-properties'],
    ['draws a random number', `const r = Math.random();`, 'no-restricted-properties'],
    ['draws a random id', `const id = crypto.randomUUID();`, 'no-restricted-globals'],
    ['reaches the clock through globalThis', `const now = globalThis.Date.now();`, 'no-restricted-properties'],
  ])(
    'the machine %s',
    async (_what, code, rule) => {
      expect(await rulesBroken('src/machines/planted.ts', code)).toContain(rule);
    },
    SLOW,
  );

  it(
    'an event module reads the clock',
    async () => {
      expect(await rulesBroken('src/events/planted.ts', `export const at = Date.now();`)).toContain(
        'no-restricted-globals',
      );
    },
    SLOW,
  );

  it(
    'a shared module the machine loads reads the clock',
    async () => {
      expect(await rulesBroken('src/shared/capability.ts', `export const at = Date.now();`)).toContain(
        'no-restricted-globals',
      );
    },
    SLOW,
  );
});

describe('the layering rules let the real arrows through', () => {
  it.each([
    ['the CLI imports the engine', 'src/cli/planted.ts', `import { x } from '../engine/queues.js';`],
    ['the CLI imports the machine', 'src/cli/commands/planted.ts', `import { x } from '../../machines/index.js';`],
    [
      "doctor's probe loads the Docker client",
      'src/cli/docker-probe.ts',
      `await import('../effects/docker/client.js');`,
    ],
    ['attach uses dockerode', 'src/cli/attach.ts', `import Docker from 'dockerode';`],
    ['effects start the gateway', 'src/effects/planted.ts', `import { x } from '../gateway/protocol.js';`],
    ['the worker runs effects', 'src/worker/planted.ts', `import { x } from '../effects/index.js';`],
    ['the plan takes the gateway ports', 'src/plan/planted.ts', `import { x } from '../gateway/protocol.js';`],
    [
      'the entry point registers the CLI and the worker',
      'src/main.ts',
      `import './cli/main.js';\nimport './worker/main.js';`,
    ],
    ['the gateway imports shared', 'src/gateway/planted.ts', `import { x } from '../shared/host-pattern.js';`],
    [
      'the machine imports events, zod and the capability schema',
      'src/machines/planted.ts',
      `import { z } from 'zod';\nimport type { X } from '../events/schema.js';\n` +
        `import { C } from '../shared/capability.js';\n// Date.now() in a comment is fine\nexport const y = [z, C];`,
    ],
  ])(
    '%s',
    async (_what, file, code) => {
      expect(await rulesBroken(file, code)).toEqual([]);
    },
    SLOW,
  );
});

let cycleRoot = '';
let cycleLint: ESLint;
describe('no import circle', () => {
  beforeAll(() => {
    // The cycle rule follows imports on disk: the circle is written to a scratch copy of src/shared.
    cycleRoot = mkdtempSync(join(tmpdir(), 'lint-cycle-'));
    mkdirSync(join(cycleRoot, 'src/shared'), { recursive: true });
    writeFileSync(join(cycleRoot, 'src/shared/b.ts'), `import { a } from './a.js';\nexport const b = () => a;\n`);
    cycleLint = new ESLint({ cwd: cycleRoot, overrideConfigFile: CONFIG, overrideConfig: WITHOUT_TYPES });
  });
  afterAll(() => rmSync(cycleRoot, { recursive: true, force: true }));

  it(
    'reports two modules that import each other',
    async () => {
      const a = `import { b } from './b.js';\nexport const a = () => b;\n`;
      writeFileSync(join(cycleRoot, 'src/shared/a.ts'), a);
      expect(await rulesBroken('src/shared/a.ts', a, cycleLint, cycleRoot)).toContain('import-x/no-cycle');
    },
    SLOW,
  );

  it(
    'lets a one-way import through',
    async () => {
      const c = `import { b } from './b.js';\nexport const c = () => b;\n`;
      writeFileSync(join(cycleRoot, 'src/shared/c.ts'), c);
      expect(await rulesBroken('src/shared/c.ts', c, cycleLint, cycleRoot)).toEqual([]);
    },
    SLOW,
  );
});
