import { spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import type Docker from 'dockerode';
import { demuxLogBuffer } from '../src/effects/docker/logs.js';
import { parseDecisionLine } from '../src/gateway/protocol.js';
import { BOTTLE_BIN, identityFrom, PIN_DEFAULT_HOSTS, startHarness } from '../test/support/cli-harness.js';
import { execIn } from '../test/support/docker.js';
import { median, percentile, type Row } from './stats.js';

/**
 * Attention latency in a real bottle: from a Claude Code Notification hook firing (`bottle-status
 * hook` run in the agent container with the hook's input) to the agent.attention event's time in
 * the log, and to a `bottle wait --until attention` already following the bottle returning.
 *
 * The bench fires the hook by `docker exec`, which Claude Code does not pay, so each figure is taken
 * from the hook's own start (bash's clock in the bottle, the host's clock, read just before it) and
 * broken down by the times each part wrote: the hook's own run, hook start -> the gateway's status
 * line (its `at`), the line -> the event in the log (the worker's follow of the gateway's output and
 * the append). Rounds alternate between the hook as shipped and the same report sent by curl, as the
 * previous bottle-status did: the baseline of the same run. The older figures, from the `docker
 * exec` call against the exec of `true` alone, follow. Rounds are paced to stay within the gateway's
 * status budget (two reports a round).
 */
const ROUNDS = 50;
const AGENT = ['bash', '-c', 'trap "exit 143" TERM; sleep 3600 & wait'];

/** The hook as shipped, and the same report as the previous bottle-status sent it (curl, a process of its own). */
const HOOK = {
  shipped: 'bottle-status hook',
  curl:
    `curl --silent --noproxy '*' --max-time 3 -o /dev/null -H 'content-type: application/json' ` +
    `--data-binary @- "$CLAUDE_BOTTLE_GATEWAY_URL/_bottle/status"`,
} as const;

interface Samples {
  toLog: number[];
  toWait: number[];
  toLine: number[];
  lineToLog: number[];
  hookRun: number[];
}
const newSamples = (): Samples => ({ toLog: [], toWait: [], toLine: [], lineToLog: [], hookRun: [] });

export async function benchAttention(): Promise<Row[]> {
  const h = await startHarness();
  try {
    const manifest = h.writeManifest({
      bottles: [{ name: 'box', egress: { allow: [] }, extra_hosts: PIN_DEFAULT_HOSTS }],
      agents: [{ name: 'bench', bottle: 'box', command: AGENT }],
    });
    const identity = identityFrom(await h.cli(['--manifest', manifest, 'start', 'bench', '--detach']));
    await h.cli(['wait', identity, '--until', 'running', '--timeout', '300']);
    const agent = h.docker.getContainer(`cb-${identity}-agent`);
    const gateway = h.docker.getContainer(`cb-${identity}-gateway`);
    const samples = { shipped: newSamples(), curl: newSamples() };
    const toLog: number[] = [];
    const toWait: number[] = [];
    const execOnly: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      let t = Date.now();
      await execIn(agent, ['true'], { user: 'node' });
      execOnly.push(Date.now() - t);
      const waiting = spawn(process.execPath, [BOTTLE_BIN, 'wait', identity, '--timeout', '60'], {
        env: h.env,
        stdio: 'ignore',
      });
      const returned = new Promise<number>((resolve) => waiting.on('exit', () => resolve(Date.now())));
      // The CLI starts and follows the bottle's stream before the hook fires.
      await sleep(2000);
      const input = JSON.stringify({
        session_id: 's',
        hook_event_name: 'Notification',
        notification_type: 'permission_prompt',
        message: `Claude needs your permission to use Bash (round ${round})`,
      });
      const way = round % 2 === 0 ? 'shipped' : 'curl';
      t = Date.now();
      // Microseconds since the epoch, read by bash itself (no process) right before and after the hook.
      const script = `s=\${EPOCHREALTIME/./}; printf '%s' "$1" | ${HOOK[way]}; echo "$s \${EPOCHREALTIME/./}"`;
      const fired = await execIn(agent, ['bash', '-c', script, '_', input], { user: 'node' });
      const [hookStart, hookEnd] = fired.output
        .trim()
        .split(/\s+/)
        .map((us) => Number(us) / 1000);
      const waitEnded = await returned;
      const raised = (await h.log.read(identity)).filter((e) => e.type === 'agent.attention').at(-1);
      const line = await statusLineAt(gateway, `(round ${round})`);
      const into = samples[way];
      if (raised) {
        toLog.push(Date.parse(raised.at) - t);
        into.toLog.push(Date.parse(raised.at) - hookStart);
        if (line !== undefined) into.lineToLog.push(Date.parse(raised.at) - line);
      }
      if (line !== undefined) into.toLine.push(line - hookStart);
      into.hookRun.push(hookEnd - hookStart);
      toWait.push(waitEnded - t);
      into.toWait.push(waitEnded - hookStart);
      await execIn(agent, ['bottle-status', 'working'], { user: 'node' });
      await sleep(2500);
    }
    const base = median(execOnly);
    return [
      ...fromHookRows(samples.shipped, samples.curl),
      { metric: 'docker exec call -> event in the log, p50', value: median(toLog), unit: 'ms', baseline: base },
      {
        metric: 'docker exec call -> event in the log, p95',
        value: percentile(toLog, 95),
        unit: 'ms',
        baseline: percentile(execOnly, 95),
      },
      { metric: 'docker exec call -> bottle wait returned, p50', value: median(toWait), unit: 'ms', baseline: base },
      {
        metric: 'docker exec call -> bottle wait returned, p95',
        value: percentile(toWait, 95),
        unit: 'ms',
        baseline: percentile(execOnly, 95),
      },
    ];
  } finally {
    await h.cleanup();
  }
}

/** Each figure from the hook's own start: the shipped hook, against the curl one of the same run. */
function fromHookRows(shipped: Samples, curl: Samples): Row[] {
  const rows: Array<[string, keyof Samples, string?]> = [
    ['hook start (in the bottle) -> event in the log', 'toLog', '<= 1000 ms'],
    ['hook start (in the bottle) -> bottle wait returned', 'toWait', '<= 1000 ms'],
    ["  the hook's own run", 'hookRun'],
    ["  hook start -> the gateway's status line", 'toLine'],
    ['  status line -> event in the log', 'lineToLog'],
  ];
  return rows.flatMap(([metric, key, target]): Row[] => [
    { metric: `${metric}, p50`, value: median(shipped[key]), unit: 'ms', baseline: median(curl[key]) },
    {
      metric: `${metric}, p95`,
      value: percentile(shipped[key], 95),
      unit: 'ms',
      baseline: percentile(curl[key], 95),
      ...(target ? { target } : {}),
    },
  ]);
}

/** The `at` (ms since the epoch) of the gateway's status line whose message holds `mark`. */
async function statusLineAt(gateway: Docker.Container, mark: string): Promise<number | undefined> {
  const raw = await gateway.logs({ follow: false, stdout: true, stderr: false });
  for (const text of demuxLogBuffer(raw).stdout.split('\n')) {
    const line = parseDecisionLine(text);
    if (line?.t === 'status' && line.at && line.message?.includes(mark)) return Date.parse(line.at);
  }
  return undefined;
}
