/**
 * The gateway and the network watch are bundled and run apart from the rest (scripts/build-gateway.mjs):
 * the lint configuration refuses, in either folder, an import of anything but its own folder and src/shared.
 * The rule is taken from the configuration as it applies to each folder, so a later block that replaced
 * it would show here.
 */
import { resolve } from 'node:path';
import { ESLint, Linter } from 'eslint';
import tseslint from 'typescript-eslint';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '../../..');

async function importProblems(file: string, source: string): Promise<string[]> {
  const config = (await new ESLint({ cwd: ROOT }).calculateConfigForFile(file)) as Linter.Config;
  const rule = config.rules?.['no-restricted-imports'];
  expect(rule, `no import rule applies to ${file}`).toBeDefined();
  const messages = new Linter().verify(
    source,
    { files: ['**/*.ts'], languageOptions: { parser: tseslint.parser }, rules: { 'no-restricted-imports': rule } },
    { filename: resolve(ROOT, file) },
  );
  return messages.map((m) => m.message);
}

describe.each([
  ['src/gateway/planted.ts', '../netwatch/protocol.js'],
  ['src/netwatch/planted.ts', '../gateway/rate-limiter.js'],
])('imports from %s', (file, otherProgram) => {
  it('refuses the other program, the engine, the CLI and ways back out of src/shared', async () => {
    for (const specifier of [otherProgram, '../engine/redis.js', '../cli/main.js', '../shared/../worker/x.js']) {
      const problems = await importProblems(file, `import { x } from '${specifier}';\nexport { x };\n`);
      expect(problems, specifier).toEqual([expect.stringContaining('only their own folder and src/shared')]);
    }
  });

  it('allows its own folder, src/shared and packages', async () => {
    const source = [
      "import { a } from './protocol.js';",
      "import type { B } from '../shared/token-bucket.js';",
      "import { z } from 'zod';",
      'export { a, z };',
      'export type { B };',
    ].join('\n');
    expect(await importProblems(file, source)).toEqual([]);
  });
});
