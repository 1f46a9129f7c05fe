import { describe, expect, it } from 'vitest';
import { parse as parseYaml, parseDocument, visit } from 'yaml';
import {
  buildPipelockConfig,
  generatePipelockConfig,
  pipelockConfigYaml,
} from '../../../../src/effects/pipelock/config.js';
import type { PipelockConfig } from '../../../../src/effects/pipelock/schema.js';
import { fakePlan } from '../../../support/fake-plan.js';

/** Strings a YAML parser would retype, cut short or misread if they were written plain or unescaped. */
const TRICKY_STRINGS = [
  '*.x.test',
  'yes',
  'no',
  'on',
  'off',
  'y',
  'true',
  '1',
  '0x10',
  '1e3',
  '.inf',
  'null',
  '~',
  '',
  'a: b',
  '#c',
  'a #c',
  '- item',
  '[flow]',
  '{flow: map}',
  '&anchor',
  '*alias',
  '!tag',
  '%directive',
  '---',
  '...',
  '"quoted" \\ back',
  "'single'",
  ' leading space',
  'trailing space ',
  'line one\nline two',
  'tab\there',
  'carriage\rreturn',
  'NUL \u0000 BEL \u0007 ESC \u001b',
  'DEL \u007f',
  'NEL \u0085',
  'line separator \u2028 paragraph separator \u2029',
  'no-break\u00a0space',
  'byte order mark \ufeff',
  'caf\u00e9',
  'emoji \u{1f680}',
  'x'.repeat(300),
];

function configWith(strings: string[]): PipelockConfig {
  const plan = fakePlan('dev-abc12', { hosts: ['github.com'], default_hosts: [] });
  const config = buildPipelockConfig(plan, { listenPort: 8888 });
  // The schema would refuse most of these as host names; the YAML must carry any string regardless.
  return {
    ...config,
    api_allowlist: strings,
    trusted_domains: strings,
    request_body_scanning: { ...config.request_body_scanning, sensitive_headers: strings },
  };
}

/** Every scalar of the document whose value is a string, keys included, with how it was written. */
function stringScalars(text: string): { value: string; type: string | undefined }[] {
  const found: { value: string; type: string | undefined }[] = [];
  visit(parseDocument(text), {
    Scalar(_key, node) {
      if (typeof node.value === 'string') found.push({ value: node.value, type: node.type });
    },
  });
  return found;
}

describe('the pipelock config YAML', () => {
  const config = configWith(TRICKY_STRINGS);
  const text = pipelockConfigYaml(config);

  it('parses back into the config object, tricky strings unchanged', () => {
    expect(parseYaml(text)).toEqual(config);
  });

  it('writes every string scalar, keys included, double-quoted', () => {
    const strings = stringScalars(text);
    const expected = [...TRICKY_STRINGS, 'api_allowlist', 'strict', '0.0.0.0:8888'];
    expect(strings.map((s) => s.value)).toEqual(expect.arrayContaining(expected));
    expect(strings.filter((s) => s.type !== 'QUOTE_DOUBLE')).toEqual([]);
  });

  it('keeps numbers and booleans unquoted, as the schema types them', () => {
    expect(text).toMatch(/^"version": 1$/m);
    expect(text).toMatch(/^"enforce": true$/m);
    expect(text).toMatch(/^"explain_blocks": false$/m);
  });

  it('escapes every character outside printable ASCII, so the file is plain ASCII', () => {
    expect(text).toMatch(/^[\x20-\x7e\n]*$/);
    expect(text).toContain('"NEL \\u0085"');
    expect(text).toContain('"line separator \\u2028 paragraph separator \\u2029"');
    expect(text).toContain('"DEL \\u007f"');
    expect(text).toContain('"emoji \\U0001f680"');
  });

  it('writes each string on one line, however long', () => {
    expect(text).toContain(`"${'x'.repeat(300)}"`);
    const oneScalarPerLine = /^ *(- )?"(?:[^"\\]|\\.)*"(:( .*)?)?$/;
    expect(
      text
        .trimEnd()
        .split('\n')
        .filter((line) => !oneScalarPerLine.test(line)),
    ).toEqual([]);
  });

  it('writes empty lists as empty lists', () => {
    const empty = configWith([]);
    expect(parseYaml(pipelockConfigYaml(empty))).toEqual(empty);
  });
});

describe('generatePipelockConfig', () => {
  // Host names that are legal DNS labels yet read as booleans, numbers or null when written plain.
  const plan = fakePlan('dev-abc12', {
    hosts: ['*.x.test', 'yes', 'no', 'on', 'off', '1', '0x10', '1e3', 'null', 'true'],
    default_hosts: [],
    extra_hosts: { 'Yes.': 'host-gateway', null: '192.0.2.1' },
  });
  const text = generatePipelockConfig(plan, { listenPort: 8888 });

  it('parses back into the config it built, after its comment header', () => {
    expect(
      text
        .split('\n')
        .slice(0, 2)
        .every((line) => line.startsWith('# ')),
    ).toBe(true);
    const config = buildPipelockConfig(plan, { listenPort: 8888 });
    expect(parseYaml(text)).toEqual(config);
    expect(config.api_allowlist).toEqual(['*.x.test', '0x10', '1', '1e3', 'no', 'null', 'off', 'on', 'true', 'yes']);
    expect(config.trusted_domains).toEqual(['null', 'yes']);
  });

  it('double-quotes every string scalar', () => {
    expect(stringScalars(text).filter((s) => s.type !== 'QUOTE_DOUBLE')).toEqual([]);
  });
});
