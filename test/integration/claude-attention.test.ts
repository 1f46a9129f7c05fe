import { randomBytes } from 'node:crypto';
import { chownSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LifecycleEvent } from '../../src/events/schema.js';
import {
  FAKE_ANTHROPIC_HOST,
  startClaudeFixture,
  TEST_TOKEN_ENV,
  type ClaudeFixture,
} from '../support/claude-fixture.js';
import { identityFrom, startHarness, type BottleHarness, type CliResult } from '../support/cli-harness.js';
import { execIn } from '../support/docker.js';
import type { FakeReply } from '../support/fake-anthropic.js';
import { bottleCommandLine, TestTerminals, type TerminalRun } from '../support/tmux.js';

/**
 * Attention and budgets with the REAL Claude Code in a bottle, against the local fake Messages API.
 *
 * Interactive (tmux owns the pty, as `bottle start` on a terminal), in Claude Code's manual permission
 * mode: the fake answers a prompt with a Bash tool call that is not pre-allowed, so Claude Code asks
 * for permission; its Notification hook
 * raises `agent.attention` kind permission with Claude's own words, `bottle wait --until attention`
 * returns for that bottle and not for another running one, answering the prompt records
 * `agent.working`, and the end of the turn (the Stop hook) records attention kind idle.
 *
 * Budget (`claude -p` run in a running bottle): the fake's usage pushes the bottle past its token
 * budget; the next call is refused by the gateway with 402 billing_error, which Claude Code shows and
 * does not send again; `bottle list` shows `budget` in ATTENTION; `bottle budget --add` lets the next
 * call through to the fake.
 */

const terminals = new TestTerminals('cbattn');
const fixtures: ClaudeFixture[] = [];
let h: BottleHarness;

/** An agent that only keeps its bottle running (for the other bottle, and for `claude -p` run in it). */
const IDLE_AGENT = ['bash', '-c', 'trap "exit 143" TERM; sleep 3600 & wait'];
/** What the fake's tool call runs: not a read-only command, so Claude Code asks before running it. */
const MARK_FILE = '/tmp/cb-permission-mark';
const ASK = 'please create the mark file';

const show = (r: CliResult) => `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;

beforeAll(async () => {
  h = await startHarness();
}, 120_000);

afterAll(async () => {
  terminals.close();
  for (const f of fixtures) await f.close();
  await h?.cleanup();
}, 120_000);

async function until<T>(
  what: string,
  probe: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs = 120_000,
  onTimeout: () => string | Promise<string> = () => '',
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${await onTimeout()}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** `bottle start --yes <agent>` in a fresh tmux session, from a working folder the agent (uid 1000) can use. */
function startInTmux(f: ClaudeFixture): TerminalRun {
  const cwd = join(terminals.folder, `cwd-${randomBytes(3).toString('hex')}`);
  mkdirSync(cwd);
  chownSync(cwd, 1000, 1000);
  const command = bottleCommandLine(h, ['--manifest', f.manifestPath, 'start', '--yes', f.agent], {
    [TEST_TOKEN_ENV]: f.secret,
  });
  return terminals.open(command, { cwd, name: 'cbattn' });
}

/** Claude Code's input box is ready: its banner and the prompt's status line are drawn. */
const readyPrompt = (screen: string) => /Claude Code v\d/.test(screen) && /shift\+tab|\? for shortcuts/.test(screen);

const agentEvents = (events: LifecycleEvent[]) =>
  events.filter((e) => e.type === 'agent.attention' || e.type === 'agent.working');

/** The agent.* events after `from` (a count of them), once `count` more have been recorded. */
async function nextAgentEvents(identity: string, from: number, count: number): Promise<LifecycleEvent[]> {
  return until(
    `${count} more agent.attention/agent.working events`,
    async () => {
      const seen = agentEvents(await h.log.read(identity)).slice(from);
      return seen.length >= count && seen;
    },
    120_000,
    async () => JSON.stringify(agentEvents(await h.log.read(identity)).map((e) => [e.type, e.data])),
  );
}

interface ListedRow {
  identity: string;
  state: string;
  attention: { kind: string; message: string } | null;
}

async function listed(identity: string): Promise<ListedRow> {
  const list = await h.cli(['list', '--format', 'json']);
  expect(list.code, show(list)).toBe(0);
  const row = (JSON.parse(list.stdout) as ListedRow[]).find((r) => r.identity === identity);
  expect(row, list.stdout).toBeDefined();
  return row!;
}

interface MessagesRequest {
  tools?: unknown[];
  messages?: Array<{ role: string; content: unknown }>;
}

/**
 * The fake's script for the permission turn: the main loop's call (the one that offers tools) asking
 * for the mark file gets a Bash tool call; the call carrying that tool's result gets the closing text.
 * (Claude Code 2.1.x sends its environment as a last message of role "system", after the user's.)
 */
function permissionScript(reply: string) {
  return ({ body }: { body: string }): FakeReply | undefined => {
    const request = JSON.parse(body) as MessagesRequest;
    if (!request.tools?.length) return undefined;
    const conversation = JSON.stringify(request.messages ?? []);
    if (conversation.includes('"tool_result"')) return { text: reply };
    if (conversation.includes(ASK)) {
      return {
        toolUse: { name: 'Bash', input: { command: `touch ${MARK_FILE}`, description: 'Create the mark file' } },
      };
    }
    return undefined;
  };
}

describe('the real Claude Code asks for permission in a bottle', () => {
  it('raises permission attention, wakes bottle wait for that bottle only, then working, then idle', async () => {
    const reply = 'The mark file is in place.';
    const f = await startClaudeFixture(h, {
      auth: 'api-key',
      bottle: 'attn',
      agents: [
        // Claude Code's default, auto mode, has its tool calls judged by the API (the request's
        // `safeguards`) and asks no one; manual mode asks the person at the terminal.
        { name: 'asker', command: ['claude', '--permission-mode', 'default'] },
        { name: 'bystander', command: IDLE_AGENT },
      ],
      reply,
      fake: { respond: permissionScript(reply) },
    });
    fixtures.push(f);

    // The other running bottle, which raises nothing.
    const other = identityFrom(
      await h.cli(['--manifest', f.manifestPath, 'start', 'bystander', '--detach'], { env: f.env }),
    );
    const otherRunning = await h.cli(['wait', other, '--until', 'running', '--timeout', '180']);
    expect(otherRunning.code, show(otherRunning)).toBe(0);

    const run = startInTmux(f);
    const identity = await until(
      'the asker bottle',
      async () => (await h.log.listBottles()).find((b) => b.agent === 'asker')?.identity,
    );
    await h.waitForEvent(identity, 'agent.started', 180_000);
    await until('Claude Code prompt', () => readyPrompt(run.screen()), 180_000, run.screen);
    const before = agentEvents(await h.log.read(identity)).length;

    // Both waits follow their bottles before anything is raised.
    const waitingForBoth = h.cli(['wait', identity, other, '--until', 'attention', '--timeout', '240']);
    const waitingForOther = h.cli(['wait', other, '--until', 'attention', '--timeout', '45']);
    await new Promise((r) => setTimeout(r, 2000));
    run.type(ASK);
    run.keys('Enter');

    // Claude Code shows its permission prompt for the fake's Bash call.
    await until('the permission prompt', () => /Do you want to proceed\?/.test(run.screen()), 120_000, run.screen);
    const both = await waitingForBoth;
    expect(both.code, show(both)).toBe(0);
    expect(both.stdout.trim()).toMatch(new RegExp(`^${identity} attention permission: .*permission`, 'i'));
    const onlyOther = await waitingForOther;
    expect(onlyOther.code, show(onlyOther)).toBe(124);
    expect(onlyOther.stdout).toBe('');

    const [raised] = await nextAgentEvents(identity, before, 1);
    expect(raised.type).toBe('agent.attention');
    const data = raised.data as { kind: string; message: string };
    expect(data.kind).toBe('permission');
    // Claude's own words, as its Notification hook gave them: bounded and printable.
    expect(data.message).toMatch(/permission/i);
    expect(data.message.length).toBeLessThanOrEqual(300);
    expect(data.message).not.toMatch(/[\u0000-\u001f\u007f]/);
    expect(await listed(identity)).toMatchObject({ state: 'running', attention: { kind: 'permission' } });
    expect(await listed(other)).toMatchObject({ state: 'running', attention: null });
    const table = await h.cli(['list']);
    expect(table.stdout.split('\n')[1]).toContain(identity);

    // Answered (the first choice is "Yes"): the tool runs, Claude Code works again.
    const agent = h.docker.getContainer(`cb-${identity}-agent`);
    const unmarked = await execIn(agent, ['test', '-e', MARK_FILE], { user: '1000' });
    expect(unmarked.code, 'the Bash call waits for the answer').toBe(1);
    run.keys('Enter');
    const [, working] = await nextAgentEvents(identity, before, 2);
    expect(working.type).toBe('agent.working');
    const marked = await execIn(agent, ['test', '-e', MARK_FILE], { user: '1000' });
    expect(marked.code, 'the allowed Bash call ran in the bottle').toBe(0);

    // The fake's closing text ends the turn: the Stop hook says the agent waits for the operator again.
    await until('the reply on screen', () => run.screen().includes(reply), 120_000, run.screen);
    const [, , idle] = await nextAgentEvents(identity, before, 3);
    expect(idle.type).toBe('agent.attention');
    expect(idle.data).toMatchObject({ kind: 'idle' });
    expect(await listed(identity)).toMatchObject({ state: 'running', attention: { kind: 'idle' } });
  }, 600_000);
});

/** What the budget test's fake reports for every call: 1,100 tokens, past a 1,000-token budget at once. */
const CALL_USAGE = { input: 400, output: 500, cache_creation: 150, cache_read: 50 };
const BUDGET_TOKENS = 1000;

describe('the real Claude Code against a spent budget', () => {
  it('is refused with 402 billing_error once, shows it, and goes through after bottle budget --add', async () => {
    const f = await startClaudeFixture(h, {
      bottle: 'budgeted',
      agents: [{ name: 'spender', command: IDLE_AGENT }],
      reply: 'Spent some tokens.',
      fake: { usage: CALL_USAGE },
      limits: { budget: { tokens: BUDGET_TOKENS } },
    });
    fixtures.push(f);
    const identity = identityFrom(
      await h.cli(['--manifest', f.manifestPath, 'start', f.agent, '--detach'], { env: f.env }),
    );
    const running = await h.cli(['wait', identity, '--until', 'running', '--timeout', '180']);
    expect(running.code, show(running)).toBe(0);
    const agent = h.docker.getContainer(`cb-${identity}-agent`);
    /** `claude -p` as the agent's user, with the agent's environment (the gateway's credential route). */
    const ask = (prompt: string) => execIn(agent, ['claude', '-p', prompt], { user: 'node' });
    const messageCalls = () => f.fake.requests.filter((r) => r.url.split('?')[0] === '/v1/messages').length;
    const decisions = async (type: string, reason: string) =>
      (await h.log.read(identity)).filter((e) => e.type === type && (e.data as { reason?: string }).reason === reason)
        .length;
    const refusals = () => decisions('egress.denied', 'budget_exhausted');
    /** Route calls are counted in the traffic summaries (a repeated one is not its own decision event). */
    const forwarded = async () =>
      Math.max(
        0,
        ...(await h.log.read(identity))
          .filter((e) => e.type === 'egress.summary')
          .flatMap((e) => (e.data as { hosts: Array<{ host: string; allowed: number }> }).hosts)
          .filter((traffic) => traffic.host === FAKE_ANTHROPIC_HOST)
          .map((traffic) => traffic.allowed),
      );

    // One call within the budget: answered, and its usage spends the whole budget.
    const first = await ask('spend some tokens');
    expect(first.code, first.output).toBe(0);
    expect(first.output).toContain(f.reply);
    const answered = messageCalls();
    expect(answered).toBeGreaterThan(0);
    await until('the budget spent in the machine', async () => {
      const row = await listed(identity);
      return row.attention?.kind === 'budget' && row;
    });
    const row = await listed(identity);
    expect(row).toMatchObject({ state: 'running', attention: { kind: 'budget' } });
    expect(row.attention!.message).toMatch(/budget spent/);
    const table = await h.cli(['list']);
    expect(table.stdout).toMatch(new RegExp(`${identity}.*budget: budget spent`));

    // The next call is refused by the gateway, never reaches the fake, and Claude Code shows the
    // refusal and stops: one refusal for the one call, no retries.
    const second = await ask('spend some more');
    expect(second.code, second.output).not.toBe(0);
    expect(second.output).toMatch(/402/);
    expect(second.output).toContain(`bottle budget ${identity} --add N`);
    expect(messageCalls()).toBe(answered);
    await until('the refusal in the log', async () => (await refusals()) > 0);

    // Raised: the next call goes through to the fake.
    const raised = await h.cli(['budget', identity, '--add', '5000']);
    expect(raised.code, show(raised)).toBe(0);
    const third = await ask('and a little more');
    expect(third.code, third.output).toBe(0);
    expect(third.output).toContain(f.reply);
    expect(messageCalls()).toBeGreaterThan(answered);
    // The gateway numbers its lines: once a summary counting the last call is in the log, so is
    // every refusal before it. The refused `claude -p` had long exited; it sent the refused call once.
    await until('the last call in the log', async () => (await forwarded()) >= messageCalls());
    expect(await refusals()).toBe(1);
  }, 600_000);
});
