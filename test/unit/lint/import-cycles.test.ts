import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

/**
 * ESLint's no-cycle skips `import type`, and a circle of type imports still ties modules together
 * (issue 19 found one in the gateway). This walks every import of src, types included, with
 * TypeScript's own scanner, and finds the strongly connected parts of that graph.
 */
const SRC = resolve(import.meta.dirname, '../../../src');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

function importGraph(files: string[]): Map<string, string[]> {
  const known = new Set(files);
  const graph = new Map<string, string[]>();
  for (const file of files) {
    const { importedFiles } = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
    const targets = importedFiles
      .map((ref) => ref.fileName)
      .filter((name) => name.startsWith('.'))
      .map((name) => resolve(dirname(file), name).replace(/\.js$/, '.ts'))
      .filter((target) => known.has(target));
    graph.set(file, [...new Set(targets)]);
  }
  return graph;
}

/** Tarjan's strongly connected components; every component of more than one module is a circle. */
function circles(graph: Map<string, string[]>): string[][] {
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (node: string): void => {
    index.set(node, counter);
    low.set(node, counter);
    counter += 1;
    stack.push(node);
    onStack.add(node);
    for (const next of graph.get(node) ?? []) {
      if (!index.has(next)) {
        visit(next);
        low.set(node, Math.min(low.get(node)!, low.get(next)!));
      } else if (onStack.has(next)) {
        low.set(node, Math.min(low.get(node)!, index.get(next)!));
      }
    }
    if (low.get(node) !== index.get(node)) return;
    const component: string[] = [];
    let member: string;
    do {
      member = stack.pop()!;
      onStack.delete(member);
      component.push(member);
    } while (member !== node);
    if (component.length > 1 || (graph.get(node) ?? []).includes(node)) found.push(component);
  };
  for (const node of graph.keys()) if (!index.has(node)) visit(node);
  return found;
}

describe('imports in src', () => {
  it('form no circle, type-only imports included', () => {
    const found = circles(importGraph(sourceFiles(SRC))).map((c) => c.map((f) => relative(SRC, f)).sort());
    expect(found).toEqual([]);
  });

  it('a circle of type imports is found (the check sees what no-cycle skips)', () => {
    const a = join(SRC, 'planted-a.ts');
    const b = join(SRC, 'planted-b.ts');
    const graph = new Map([
      [a, [b]],
      [b, [a]],
    ]);
    expect(circles(graph)).toHaveLength(1);
    const scanned = ts.preProcessFile("import type { B } from './planted-b.js';", true, true).importedFiles;
    expect(scanned.map((f) => f.fileName)).toEqual(['./planted-b.js']);
  });
});
