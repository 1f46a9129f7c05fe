import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * The lifecycle machine must stay a pure function of its event history:
 * no I/O modules, no clock, no randomness. Timestamps arrive inside events.
 */
const MACHINES_DIR = join(import.meta.dirname, '../../src/machines');

const FORBIDDEN_MODULES = [
  'dockerode',
  'ioredis',
  'bullmq',
  'fs',
  'node:fs',
  'fs/promises',
  'node:fs/promises',
  'child_process',
  'node:child_process',
  'net',
  'node:net',
  'http',
  'node:http',
  'https',
  'node:https',
];

const FORBIDDEN_GLOBALS: Array<[RegExp, string]> = [
  [/\bDate\b/, 'Date'],
  [/\bperformance\b/, 'performance'],
  [/\bMath\.random\b/, 'Math.random'],
  [/\bprocess\.hrtime\b/, 'process.hrtime'],
  [/\bcrypto\b/, 'crypto'],
];

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return /\.[cm]?[jt]s$/.test(name) ? [path] : [];
  });
}

/** Comments may mention Date and friends; only code counts. */
function stripComments(source: string): string {
  return source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:])\/\/.*$/gm, '$1');
}

function importedModules(source: string): string[] {
  const specifiers: string[] = [];
  const pattern = /(?:\bfrom\s*|\bimport\s*\(?\s*|\brequire\s*\(\s*)['"]([^'"]+)['"]/g;
  for (const match of source.matchAll(pattern)) specifiers.push(match[1]);
  return specifiers;
}

/** Relative modules loaded at run time (`import type` is erased by the compiler, so it cannot do I/O). */
function runtimeRelativeImports(source: string): string[] {
  const specifiers: string[] = [];
  const runtimeImport = /\bimport\s+(?!type\b)[^'";]*?from\s*['"](\.{1,2}\/[^'"]+)['"]/;
  const runtimeReexport = /\bexport\s+(?!type\b)[^'";]*?from\s*['"](\.{1,2}\/[^'"]+)['"]/;
  const pattern = new RegExp(`${runtimeImport.source}|${runtimeReexport.source}`, 'g');
  for (const match of stripComments(source).matchAll(pattern)) specifiers.push(match[1] ?? match[2]);
  return specifiers;
}

/** Every source file the machine loads at run time, following relative imports out of src/machines. */
function runtimeClosure(entries: string[]): string[] {
  const seen = new Set<string>();
  const queue = [...entries];
  while (queue.length > 0) {
    const file = queue.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    for (const spec of runtimeRelativeImports(readFileSync(file, 'utf8'))) {
      queue.push(resolve(dirname(file), spec.replace(/\.js$/, '.ts')));
    }
  }
  return [...seen].sort();
}

function purityViolations(source: string): string[] {
  const code = stripComments(source);
  const violations = importedModules(code)
    .filter((m) => FORBIDDEN_MODULES.includes(m))
    .map((m) => `imports ${m}`);
  for (const [pattern, name] of FORBIDDEN_GLOBALS) if (pattern.test(code)) violations.push(`uses ${name}`);
  return violations;
}

describe('src/machines purity', () => {
  const files = sourceFiles(MACHINES_DIR);

  it('has machine sources to check', () => {
    expect(files.length).toBeGreaterThan(0);
  });

  it.each(files.map((f) => [relative(MACHINES_DIR, f), f]))(
    '%s imports no I/O and reads no clock or randomness',
    (_name, file) => {
      expect(purityViolations(readFileSync(file, 'utf8'))).toEqual([]);
    },
  );

  const loaded = runtimeClosure(files).filter((f) => !f.startsWith(MACHINES_DIR));
  it.each(loaded.map((f) => [relative(join(MACHINES_DIR, '../..'), f), f]))(
    '%s, loaded by the machine at run time, is pure too',
    (_name, file) => {
      expect(purityViolations(readFileSync(file, 'utf8'))).toEqual([]);
    },
  );

  it('the checker catches each kind of violation', () => {
    expect(purityViolations(`import Docker from 'dockerode';`)).toEqual(['imports dockerode']);
    expect(purityViolations(`import { readFileSync } from "node:fs";`)).toEqual(['imports node:fs']);
    expect(purityViolations(`const cp = await import('child_process');`)).toEqual(['imports child_process']);
    expect(purityViolations(`import type { Redis } from 'ioredis';`)).toEqual(['imports ioredis']);
    expect(purityViolations(`const now = Date.now();`)).toEqual(['uses Date']);
    expect(purityViolations(`const t = performance.now();`)).toEqual(['uses performance']);
    expect(purityViolations(`const r = Math.random();`)).toEqual(['uses Math.random']);
    expect(purityViolations(`// a comment about Date.now() is fine\nconst x = 1;`)).toEqual([]);
    expect(purityViolations(`import { setup } from 'xstate';`)).toEqual([]);
    expect(
      runtimeRelativeImports(
        `import type { A } from './a.js';\nimport { b } from '../b.js';\nexport { c } from './c.js';`,
      ),
    ).toEqual(['../b.js', './c.js']);
  });
});
