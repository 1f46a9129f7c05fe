import { spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { BOTTLE_BIN, identityFrom, PIN_DEFAULT_HOSTS, startHarness } from '../test/support/cli-harness.js';
import { execIn } from '../test/support/docker.js';
import { median, percentile, type Row } from './stats.js';

/**
 * Attention latency in a real bottle: from a Claude Code Notification hook firing (`bottle-status
 * hook` run in the agent container with the hook's input, by `docker exec`) to the agent.attention
 * event's time in the log, and to a `bottle wait --until attention` already following the bottle
 * returning. The baseline, measured in the same rounds, is the `docker exec` of `true` alone: the
 * part of each figure that is the test's way of firing the hook, not the tool. Rounds are paced to
 * stay within the gateway's status budget (two reports a round).
 */
const ROUNDS = 50;
const AGENT = ['bash', '-c', 'trap "exit 143" TERM; sleep 3600 & wait'];

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
      t = Date.now();
      await execIn(agent, ['bash', '-c', `printf '%s' '${input}' | bottle-status hook`], { user: 'node' });
      const waitEnded = await returned;
      const raised = (await h.log.read(identity)).filter((e) => e.type === 'agent.attention').at(-1);
      if (raised) toLog.push(Date.parse(raised.at) - t);
      toWait.push(waitEnded - t);
      await execIn(agent, ['bottle-status', 'working'], { user: 'node' });
      await sleep(2500);
    }
    const base = median(execOnly);
    return [
      { metric: 'hook -> agent.attention in the log, p50', value: median(toLog), unit: 'ms', baseline: base },
      {
        metric: 'hook -> agent.attention in the log, p95',
        value: percentile(toLog, 95),
        unit: 'ms',
        baseline: percentile(execOnly, 95),
        target: '<= 1000 ms',
      },
      { metric: 'hook -> bottle wait returned, p50', value: median(toWait), unit: 'ms', baseline: base },
      {
        metric: 'hook -> bottle wait returned, p95',
        value: percentile(toWait, 95),
        unit: 'ms',
        baseline: percentile(execOnly, 95),
        target: '<= 1000 ms',
      },
    ];
  } finally {
    await h.cleanup();
  }
}
