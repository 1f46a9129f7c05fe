import type Docker from 'dockerode';
import { execIn } from './docker.js';

/** Finding 21.8's limit, as the audit set it. */
export const PIDS = 256;

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

/** The most the container's pids cgroup held while WORK ran, sampled from Docker's stats. */
export async function peakPids(agent: Docker.Container, work: Promise<unknown>): Promise<number> {
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

/**
 * Finding 21.8's reproduction, shared by its dedicated test (pids-limit) and the escape suite, on a running
 * agent with `limits.pids: 256`: 100 concurrent processes, then a bounded fork bomb; what ran and what held.
 */
export async function pidsProbe(agent: Docker.Container) {
  const hundred = execIn(agent, [
    'bash',
    '-c',
    'for i in $(seq 100); do sleep 30 & done; sleep 2; echo "running $(jobs -pr | wc -l)"; kill $(jobs -p); wait',
  ]);
  const hundredPeak = await peakPids(agent, hundred);
  const hundredRan = (await hundred).output.includes('running 100');
  const runningAfterHundred = (await agent.inspect()).State.Running;
  const bomb = execIn(agent, ['bash', '-c', FORK_BOMB]);
  const bombPeak = await peakPids(agent, bomb);
  const bombed = await bomb;
  const stillRunning = (await agent.inspect()).State.Running;
  const after = stillRunning ? await execIn(agent, ['bash', '-c', 'sleep 0.1 & wait; echo alive']) : undefined;
  return {
    hundredPeak,
    hundredRan,
    runningAfterHundred,
    bombPeak,
    bombOutput: bombed.output,
    /** Its forks were refused at the limit (EAGAIN), not the sandbox ended. */
    bombStoppedAtLimit: bombed.output.includes('bomb-over') && /Resource temporarily unavailable/.test(bombed.output),
    stillRunning,
    forksAfter: after?.output.includes('alive') ?? false,
  };
}
