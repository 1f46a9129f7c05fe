import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LifecycleEvent } from '../../src/events/schema.js';
import { STATUS_BURST, STATUS_REFILL_WINDOW_MS } from '../../src/gateway/status-routes.js';
import {
  BOTTLE_BIN,
  identityFrom,
  PIN_DEFAULT_HOSTS,
  startHarness,
  type BottleHarness,
  type CliResult,
} from '../support/cli-harness.js';
import { execIn } from '../support/docker.js';

/**
 * The hook path of attention, in real bottles: `bottle-status hook` fed the JSON Claude Code gives its
 * Notification, PostToolUse and Stop hooks (and `bottle-status attention`, as any agent calls it) reaches
 * the gateway, whose lines the worker records as agent.attention / agent.working. `bottle list` shows
 * it, `bottle wait --until attention` returns for that bottle and not for another, `bottle notify`
 * runs its command once per attention with the message defanged, and a flood of reports is refused
 * past the status budget, so the log stays bounded. Claude Code itself is not run here.
 */

let h: BottleHarness;
let manifest: string;
let scratch: string;

const AGENT = ['bash', '-c', 'trap "exit 143" TERM; sleep 600 & wait'];

beforeAll(async () => {
  h = await startHarness();
  scratch = mkdtempSync(join(tmpdir(), 'cb-attention-'));
  manifest = h.writeManifest({
    bottles: [{ name: 'box', egress: { allow: [] }, extra_hosts: PIN_DEFAULT_HOSTS }],
    agents: [{ name: 'worker', bottle: 'box', command: AGENT }],
  });
}, 180_000);

afterAll(async () => {
  await h?.cleanup();
  rmSync(scratch, { recursive: true, force: true });
});

const show = (r: CliResult) => `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;
const agentOf = (identity: string) => h.docker.getContainer(`cb-${identity}-agent`);
const inAgent = (identity: string, script: string) =>
  execIn(agentOf(identity), ['bash', '-c', script], { user: 'node' });
/** Runs `bottle-status hook` with a hook input as Claude Code writes it. */
const hook = (identity: string, input: Record<string, unknown>) => {
  const json = JSON.stringify({ session_id: 's1', transcript_path: '/t', cwd: '/w', ...input });
  return inAgent(identity, `printf '%s' '${json}' | bottle-status hook`);
};

async function waitForCount(identity: string, type: string, count: number): Promise<LifecycleEvent[]> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const events = await h.log.read(identity);
    if (events.filter((e) => e.type === type).length >= count) return events;
    if (Date.now() > deadline) throw new Error(`${identity}: fewer than ${count} ${type}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function listed(identity: string): Promise<{ state: string; attention: { kind: string } | null }> {
  const list = await h.cli(['list', '--format', 'json']);
  const rows = JSON.parse(list.stdout) as Array<{
    identity: string;
    state: string;
    attention: { kind: string } | null;
  }>;
  return rows.find((r) => r.identity === identity)!;
}

async function startRunning(): Promise<string> {
  const identity = identityFrom(await h.cli(['--manifest', manifest, 'start', 'worker', '--detach']));
  const running = await h.cli(['wait', identity, '--until', 'running', '--timeout', '120']);
  expect(running.code, show(running)).toBe(0);
  expect(running.stdout.trim()).toBe(`${identity} running`);
  return identity;
}

describe('attention through bottle-status', () => {
  it('raises and clears attention, wakes bottle wait for one bottle only, runs bottle notify once each', async () => {
    const [a, b] = [await startRunning(), await startRunning()];
    const notified = join(scratch, 'notified');
    const notify: ChildProcess = spawn(
      process.execPath,
      [
        BOTTLE_BIN,
        'notify',
        '--command',
        `printf '%s|%s|%s\\n' "$BOTTLE_IDENTITY" "$BOTTLE_ATTENTION_KIND" "$BOTTLE_ATTENTION_MESSAGE" >> ${notified}`,
      ],
      { env: h.env, stdio: 'ignore' },
    );
    try {
      // Let notify take its first look before anything is raised (what it finds held is not new).
      await new Promise((r) => setTimeout(r, 3000));
      const waitingForBoth = h.cli(['wait', a, b, '--until', 'attention', '--timeout', '90']);
      const waitingForB = h.cli(['wait', b, '--until', 'attention', '--timeout', '15']);
      const prompt = await hook(a, {
        hook_event_name: 'Notification',
        notification_type: 'permission_prompt',
        message: 'Claude needs your permission to use Bash\u001b]0;pwned\u0007',
      });
      expect(prompt.code, prompt.output).toBe(0);
      expect(prompt.output).toBe('');

      const both = await waitingForBoth;
      expect(both.code, show(both)).toBe(0);
      expect(both.stdout.trim()).toBe(
        `${a} attention permission: Claude needs your permission to use Bash\\x1b]0;pwned\\x07`,
      );
      const onlyB = await waitingForB;
      expect(onlyB.code, show(onlyB)).toBe(124);
      expect(onlyB.stdout).toBe('');

      expect(await listed(a)).toMatchObject({ state: 'running', attention: { kind: 'permission' } });
      expect(await listed(b)).toMatchObject({ state: 'running', attention: null });
      const table = await h.cli(['list']);
      expect(table.stdout.split('\n')[1]).toContain(a);
      expect(table.stdout).toContain('permission: Claude needs your permission');

      // Answered: the tool ran. Then the turn ends; then another agent's own words.
      await hook(a, { hook_event_name: 'PostToolUse', tool_name: 'Bash', tool_response: 'x'.repeat(40_000) });
      await waitForCount(a, 'agent.working', 1);
      expect((await listed(a)).attention).toBeNull();
      await hook(a, { hook_event_name: 'Stop', stop_hook_active: false });
      const events = await waitForCount(a, 'agent.attention', 2);
      expect(events.filter((e) => e.type === 'agent.attention').at(-1)!.data).toMatchObject({ kind: 'idle' });
      const asked = await inAgent(b, `bottle-status attention --kind question 'which branch?'`);
      expect(asked.code, asked.output).toBe(0);
      await waitForCount(b, 'agent.attention', 1);

      const deadline = Date.now() + 30_000;
      let lines: string[] = [];
      while (Date.now() < deadline && lines.length < 3) {
        await new Promise((r) => setTimeout(r, 200));
        lines = readFileSafe(notified).split('\n').filter(Boolean);
      }
      expect(lines).toEqual([
        `${a}|permission|Claude needs your permission to use Bash\\x1b]0;pwned\\x07`,
        `${a}|idle|finished its turn; waiting for your input`,
        `${b}|question|which branch?`,
      ]);
    } finally {
      notify.kill('SIGTERM');
    }
  }, 300_000);

  it('a flood of thousands of reports is refused past the status budget and stays bounded in the log', async () => {
    const identity = await startRunning();
    const before = (await h.log.read(identity)).length;
    const started = Date.now();
    // 3,000 reports from one bash process (no process per report, so the flood is fast even under
    // gVisor), then 100 through bottle-status itself, which says it was refused and exits 0.
    const flood = await inAgent(
      identity,
      `hp=\${CLAUDE_BOTTLE_GATEWAY_URL#http://}; codes=''
       for i in $(seq 3000); do {
         body="{\\"state\\":\\"attention\\",\\"message\\":\\"flood $i\\"}"
         exec 3<>/dev/tcp/\${hp%:*}/\${hp##*:}
         printf 'POST /_bottle/status HTTP/1.0\\r\\nContent-Length: %s\\r\\n\\r\\n%s' "\${#body}" "$body" >&3
         IFS=' ' read -r _ code _ <&3; exec 3<&-; codes+="$code "
       } 2>/dev/null; done
       echo "accepted: $(grep -oE '20[02]' <<<"$codes" | wc -l) refused: $(grep -o 429 <<<"$codes" | wc -l)"
       seq 100 | xargs -P 8 -I{} bottle-status attention 'report {}' 2>&1 | sort | uniq -c`,
    );
    const seconds = (Date.now() - started) / 1000;
    expect(flood.code, flood.output).toBe(0);
    // What the budget can have taken in while the flood ran: the burst, then its refill.
    const refill = Math.ceil(((seconds + 3) * 1000 * STATUS_BURST) / STATUS_REFILL_WINDOW_MS);
    // (A read can fail with EAGAIN under gVisor: such a report is counted neither way.)
    const [, accepted, refused] = /accepted: (\d+) refused: (\d+)/.exec(flood.output)!.map(Number);
    expect(accepted, flood.output).toBeLessThanOrEqual(STATUS_BURST + refill);
    expect(refused, flood.output).toBeGreaterThan(1000);
    expect(flood.output).toContain('too many reports');
    // Let the watcher record what the gateway wrote.
    await new Promise((r) => setTimeout(r, 3000));
    const recorded = (await h.log.read(identity)).slice(before).filter((e) => e.type.startsWith('agent.'));
    expect(recorded.length).toBeGreaterThan(0);
    expect(recorded.length).toBeLessThanOrEqual(STATUS_BURST + refill);
    expect((await listed(identity)).state).toBe('running');
  }, 300_000);
});

function readFileSafe(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}
