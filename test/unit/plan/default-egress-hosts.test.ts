import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { QUIET_AGENT_ENV } from '../../../src/plan/agent-env.js';
import { DEFAULT_HOSTS } from '../../../src/plan/default-hosts.js';

const README = readFileSync(join(import.meta.dirname, '..', '..', '..', 'README.md'), 'utf8');

/** The rows of the README's "Default egress hosts" table: host -> reason. */
function readmeTable(): Map<string, string> {
  const section = README.slice(README.indexOf('### Default egress hosts'));
  const rows = new Map<string, string>();
  for (const line of section.split('\n').slice(1)) {
    if (line.startsWith('#')) break;
    const m = /^\| `([^`]+)` \| (.+) \|$/.exec(line);
    if (m) rows.set(m[1], m[2]);
  }
  return rows;
}

describe('the default egress allowlist', () => {
  it('leaves out the telemetry and crash-reporting hosts the agent is told not to use', () => {
    expect(QUIET_AGENT_ENV).toMatchObject({ DISABLE_TELEMETRY: '1', DISABLE_ERROR_REPORTING: '1' });
    expect(DEFAULT_HOSTS).not.toContain('sentry.io');
    expect(DEFAULT_HOSTS).not.toContain('statsig.anthropic.com');
    expect(DEFAULT_HOSTS.some((h) => /sentry|statsig|datadog|segment/.test(h))).toBe(false);
  });

  it('gives the reason for every default, and only for defaults, in the README', () => {
    const table = readmeTable();
    expect([...table.keys()].sort()).toEqual([...DEFAULT_HOSTS].sort());
    for (const reason of table.values()) expect(reason.length).toBeGreaterThan(10);
  });
});
