import { describe, expect, it } from 'vitest';
import { BOTTLE_STATUS_HOOK_COMMAND, REPORTED_HOOK_EVENTS, withStatusHooks } from '../../../src/plan/claude-hooks.js';
import { claudeStateFiles } from '../../../src/plan/claude-state.js';
import type { BottlePlan } from '../../../src/plan/schema.js';

const statusHook = { hooks: [{ type: 'command', command: BOTTLE_STATUS_HOOK_COMMAND, timeout: 5 }] };
const userStop = { hooks: [{ type: 'command', command: 'say done' }] };
const userBash = { matcher: 'Bash', hooks: [{ type: 'command', command: '/home/node/audit.sh' }] };

describe('withStatusHooks', () => {
  it('adds bottle-status to each reported event, after the hooks the bottle already has', () => {
    const merged = withStatusHooks({ theme: 'dark', hooks: { Stop: [userStop], PreToolUse: [userBash] } });
    expect(merged.theme).toBe('dark');
    const hooks = merged.hooks as Record<string, unknown[]>;
    expect(hooks.Stop).toEqual([userStop, statusHook]);
    expect(hooks.PreToolUse).toEqual([userBash]);
    for (const event of REPORTED_HOOK_EVENTS) expect(hooks[event].at(-1)).toEqual(statusHook);
  });

  it('adds nothing twice: a resumed bottle’s settings come back unchanged', () => {
    const once = withStatusHooks({ hooks: { Stop: [userStop] } });
    expect(withStatusHooks(once)).toEqual(once);
  });

  it('leaves a hooks entry it cannot read as Claude Code would as it is', () => {
    expect(withStatusHooks({ hooks: 'none' })).toEqual({ hooks: 'none' });
    const odd = withStatusHooks({ hooks: { Stop: { command: 'x' } } });
    expect((odd.hooks as Record<string, unknown>).Stop).toEqual({ command: 'x' });
    expect((odd.hooks as Record<string, unknown>).Notification).toEqual([statusHook]);
  });

  it('goes into the settings a restored transcript brings back, keeping its own hooks', () => {
    const plan = { cwd: '/w', credentials: [] as unknown as BottlePlan['credentials'] };
    const existingSettings = JSON.stringify({ hooks: { Notification: [userBash] } });
    const settings = JSON.parse(claudeStateFiles({ plan, existingSettings }).settings ?? 'null') as {
      hooks: Record<string, unknown[]>;
    };
    expect(settings.hooks.Notification).toEqual([userBash, statusHook]);
  });
});
