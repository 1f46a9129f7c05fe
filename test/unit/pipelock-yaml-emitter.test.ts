import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { emitYaml, YamlEmitError } from '../../src/effects/pipelock/yaml-emitter.js';

describe('emitYaml', () => {
  it('writes block mappings, sequences and scalars that a YAML parser reads back unchanged', () => {
    const doc = {
      version: 1,
      ratio: 0.5,
      mode: 'strict',
      on: true,
      off: false,
      nothing: null,
      list: ['a', 'b'],
      empty_list: [],
      empty_map: {},
      nested: { deeper: { leaf: 'x' }, flags: [true, 3] },
    };
    expect(parseYaml(emitYaml(doc))).toEqual(doc);
  });

  it.each([
    ['a leading wildcard', '*.example.com'],
    ['an address with a colon', '0.0.0.0:8888'],
    ['a YAML 1.1 boolean word', 'yes'],
    ['a number-looking string', '1'],
    ['a null-looking string', 'null'],
    ['a comment marker', 'a # b'],
    ['quotes and backslashes', 'say "hi" \\ bye'],
    ['a newline and a tab', 'line1\nline2\tend'],
    ['DEL and NEL', 'a\u007fb\u0085c'],
    ['non-ASCII and astral text', 'café 🚀'],
    ['an empty string', ''],
  ])('keeps %s a string with the same value', (_label, value) => {
    const text = emitYaml({ value });
    expect(parseYaml(text)).toEqual({ value });
    expect(text).toMatch(/^[\x20-\x7e\n]*$/);
  });

  it('quotes keys that are not plain identifiers', () => {
    const doc = { 'Mirror.Internal.Test': ['10.0.0.1'], 'odd key': 1 };
    expect(parseYaml(emitYaml(doc))).toEqual(doc);
  });

  it('indents nested mappings by two spaces per level', () => {
    expect(emitYaml({ a: { b: { c: 1 } } })).toBe('a:\n  b:\n    c: 1\n');
  });

  it('refuses shapes it does not support instead of writing them approximately', () => {
    expect(() => emitYaml({ list: [['nested']] as never })).toThrow(YamlEmitError);
    expect(() => emitYaml({ list: [{ a: 1 }] as never })).toThrow(/list\[0\]/);
    expect(() => emitYaml({ n: Number.NaN })).toThrow(/not finite/);
    expect(() => emitYaml({ u: undefined as never })).toThrow(/undefined/);
  });
});
