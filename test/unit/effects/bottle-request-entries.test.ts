import { describe, expect, it } from 'vitest';
import { BOTTLE_REQUEST_PATH, bottleRequestEntries } from '../../../src/effects/docker/bottle-request.js';
import { AGENT_HOME, SKILLS_TARGET_DIR } from '../../../src/plan/agent-env.js';

/** What every bottle is given for capability requests: the command (root's, runnable by the agent) and its skill. */
describe('bottleRequestEntries', () => {
  it('ships the command root-owned and executable, and the skill in the agent-owned skills folder', () => {
    const targets = { home: AGENT_HOME, promptTarget: '', skillsDir: SKILLS_TARGET_DIR, sshDir: '', claudeDir: '' };
    const entries = bottleRequestEntries(targets);
    const shape = entries.map((e) => [e.type, e.path, 'mode' in e ? e.mode.toString(8) : '', `${e.uid}:${e.gid}`]);
    expect(shape).toEqual([
      ['host-file', BOTTLE_REQUEST_PATH, '755', '0:0'],
      ['directory', '/home/node', '755', '1000:1000'],
      ['directory', '/home/node/.claude', '755', '1000:1000'],
      ['directory', '/home/node/.claude/skills', '755', '1000:1000'],
      ['directory', '/home/node/.claude/skills/bottle-request', '755', '1000:1000'],
      ['host-file', '/home/node/.claude/skills/bottle-request/SKILL.md', '644', '1000:1000'],
    ]);
    for (const entry of entries) if (entry.type === 'host-file') expect(entry.size).toBeGreaterThan(0);
  });
});
