import type Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resourceNames } from '../../src/shared/names.js';
import { identityFrom, PIN_DEFAULT_HOSTS, startHarness, type BottleHarness } from '../support/cli-harness.js';
import { execIn } from '../support/docker.js';

/**
 * `limits.pids: 256` on a real bottle, under each runtime: the audit's reproduction (issue 21,
 * finding 8). Under gVisor the container's pids cgroup also counts the sandbox's own host
 * threads, so as the limit it ended the whole sandbox at about twenty concurrent connects.
 * Now 100 concurrent processes run, and a fork bomb stops at the limit (its forks fail with
 * EAGAIN) while the bottle keeps running; the cgroup ceiling still bounds the host.
 */

const RUNTIMES = ['runsc', 'runc'] as const;
const PIDS = 256;
// PID 1 ignores signals it has no handler for; the agent traps TERM so cleanup stops it promptly.
const STOPPABLE = ['bash', '-c', 'trap "exit 143" TERM; sleep 600 & wait'];
// Bounded: the bomb runs in a session of its own for 15 s; then this shell, forked before it, kills its
// whole process group with bash's builtin kill (no fork needed while the limit is full) until none is left.
const FORK_BOMB = [
  // A FIFO opened both ways never ends: reading it waits out the 15 s without a fork.
  'mkfifo /tmp/bomb.wait; exec 9<>/tmp/bomb.wait',
  "setsid bash -c ':(){ :|:& };:' 2>/tmp/bomb.err & pg=$!",
  'read -t 15 -u 9 || true',
  'for ((i = 0; i < 100000; i++)); do kill -9 -- -$pg 2>/dev/null || break; done',
  'sort /tmp/bomb.err | uniq -c | sort -rn | head -n 5; echo bomb-over',
].join('; ');

describe.each(RUNTIMES)('limits.pids 256 under %s', (runtime) => {
  let h: BottleHarness;
  let manifest: string;

  beforeAll(async () => {
    h = await startHarness({ env: { CLAUDE_BOTTLE_RUNTIME: runtime } });
    manifest = h.writeManifest({
      bottles: [{ name: 'box', egress: { allow: [] }, extra_hosts: PIN_DEFAULT_HOSTS, limits: { pids: PIDS } }],
      agents: [{ name: 'procs', bottle: 'box', command: STOPPABLE }],
    });
  });
  afterAll(async () => {
    await h?.cleanup();
  });

  /** The most the container's pids cgroup held while WORK ran, sampled from Docker's stats. */
  async function peakPids(agent: Docker.Container, work: Promise<unknown>): Promise<number> {
    let peak = 0;
    let done = false;
    void work.finally(() => (done = true));
    while (!done) {
      const stats = (await agent.stats({ stream: false })) as { pids_stats?: { current?: number } };
      peak = Math.max(peak, stats.pids_stats?.current ?? 0);
    }
    await work;
    return peak;
  }

  it('runs 100 concurrent processes; a fork bomb stops at the limit; the bottle keeps running', async () => {
    const started = await h.cli(['--manifest', manifest, 'start', 'procs', '--detach']);
    expect(started.code, started.stderr).toBe(0);
    const identity = identityFrom(started);
    await h.waitForEvent(identity, 'agent.started');
    const agent = h.docker.getContainer(resourceNames(identity).agentContainer);

    const { HostConfig } = await agent.inspect();
    if (runtime === 'runsc') {
      expect(HostConfig.Ulimits).toEqual([{ Name: 'nproc', Soft: PIDS, Hard: PIDS }]);
      expect(HostConfig.PidsLimit).toBeGreaterThan(PIDS);
    } else {
      expect(HostConfig.Ulimits ?? []).toEqual([]);
      expect(HostConfig.PidsLimit).toBe(PIDS);
    }

    const hundred = execIn(agent, [
      'bash',
      '-c',
      'for i in $(seq 100); do sleep 30 & done; sleep 2; echo "running $(jobs -pr | wc -l)"; kill $(jobs -p); wait',
    ]);
    const hundredPeak = await peakPids(agent, hundred);
    expect((await hundred).output).toContain('running 100');
    expect((await agent.inspect()).State.Running).toBe(true);

    const bomb = execIn(agent, ['bash', '-c', FORK_BOMB]);
    const bombPeak = await peakPids(agent, bomb).catch(async (err) => {
      // The sandbox ended (agent.exited, code 2) and the bottle took its container away: say so.
      const types = (await h.log.read(identity)).map((e) => e.type);
      throw new Error(`the fork bomb ended the bottle (${types.slice(-3).join(', ')}): ${String(err)}`);
    });
    const bombed = await bomb;
    expect(bombed.output).toContain('bomb-over');
    // Its forks were refused at the limit, not the sandbox ended.
    expect(bombed.output).toMatch(/Resource temporarily unavailable/);
    expect(bombPeak).toBeLessThanOrEqual(HostConfig.PidsLimit!);
    console.log(`${runtime}: pids cgroup peak ${hundredPeak} with 100 sleeps, ${bombPeak} in the fork bomb`);

    // The bottle is still running, and its agent still starts processes once the bomb is gone.
    expect((await agent.inspect()).State.Running).toBe(true);
    const after = await execIn(agent, ['bash', '-c', 'sleep 0.1 & wait; echo alive']);
    expect(after.output).toContain('alive');
    const events = await h.log.read(identity);
    expect(events.map((e) => e.type)).not.toContain('agent.exited');
    const listed = await h.cli(['list', '--format', 'json']);
    const mine = (JSON.parse(listed.stdout) as Array<{ identity: string; state: string }>).find(
      (b) => b.identity === identity,
    );
    expect(mine?.state).toBe('running');
  });
});
