import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resourceNames } from '../../src/shared/names.js';
import { identityFrom, PIN_DEFAULT_HOSTS, startHarness, type BottleHarness } from '../support/cli-harness.js';
import { pidsProbe, PIDS } from '../support/pids-probe.js';

/**
 * `limits.pids: 256` on a real bottle, under each runtime: the audit's reproduction (issue 21,
 * finding 8). Under gVisor the container's pids cgroup also counts the sandbox's own host
 * threads, so as the limit it ended the whole sandbox at about twenty concurrent connects.
 * Now 100 concurrent processes run, and a fork bomb stops at the limit (its forks fail with
 * EAGAIN) while the bottle keeps running; the cgroup ceiling still bounds the host.
 */

const RUNTIMES = ['runsc', 'runc'] as const;
// PID 1 ignores signals it has no handler for; the agent traps TERM so cleanup stops it promptly.
const STOPPABLE = ['bash', '-c', 'trap "exit 143" TERM; sleep 600 & wait'];

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

    const probe = await pidsProbe(agent).catch(async (err) => {
      // The sandbox ended (agent.exited, code 2) and the bottle took its container away: say so.
      const events = await h.log.read(identity);
      const exited = events.find((e) => e.type === 'agent.exited');
      const last = events.slice(-3).map((e) => e.type);
      throw new Error(
        `the fork bomb ended the bottle (${last.join(', ')}; exit ${JSON.stringify(exited?.data)}): ${String(err)}`,
      );
    });
    expect(probe.hundredRan).toBe(true);
    expect(probe.runningAfterHundred).toBe(true);
    expect(probe.bombOutput).toContain('bomb-over');
    // Its forks were refused at the limit, not the sandbox ended.
    expect(probe.bombOutput).toMatch(/Resource temporarily unavailable/);
    expect(probe.bombPeak).toBeLessThanOrEqual(HostConfig.PidsLimit!);
    console.log(
      `${runtime}: pids cgroup peak ${probe.hundredPeak} with 100 sleeps, ${probe.bombPeak} in the fork bomb`,
    );

    // The bottle is still running, and its agent still starts processes once the bomb is gone.
    expect(probe.stillRunning).toBe(true);
    expect(probe.forksAfter).toBe(true);
    const events = await h.log.read(identity);
    expect(events.map((e) => e.type)).not.toContain('agent.exited');
    const listed = await h.cli(['list', '--format', 'json']);
    const mine = (JSON.parse(listed.stdout) as Array<{ identity: string; state: string }>).find(
      (b) => b.identity === identity,
    );
    expect(mine?.state).toBe('running');
  });
});
