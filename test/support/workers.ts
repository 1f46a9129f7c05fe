import { spawn, type ChildProcess } from 'node:child_process';
import { BOTTLE_BIN, REPO, type BottleHarness, type CliResult } from './cli-harness.js';

/**
 * The `bottle worker --host ID` processes a test starts on a harness: each
 * runs with the harness's environment (plus what the test adds) and is ended
 * by its own pid, SIGTERM first, when the test says or in its afterAll.
 */
export class TestWorkers {
  private readonly running = new Set<ChildProcess>();

  constructor(private readonly harness: () => BottleHarness) {}

  start(hostId: string, env: NodeJS.ProcessEnv = {}): ChildProcess {
    const child = spawn(process.execPath, [BOTTLE_BIN, 'worker', '--host', hostId], {
      cwd: REPO,
      env: { ...this.harness().env, ...env },
      stdio: 'ignore',
    });
    this.running.add(child);
    child.once('exit', () => this.running.delete(child));
    return child;
  }

  /** The running worker serving `hostId`, if this test started one. */
  serving(hostId: string): ChildProcess | undefined {
    return [...this.running].find((child) => child.spawnargs.includes(hostId));
  }

  async stop(child: ChildProcess): Promise<void> {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  }

  async stopAll(): Promise<void> {
    for (const child of [...this.running]) await this.stop(child);
  }
}

/** Polls `probe` until it gives a truthy value, failing the test with `what` after the timeout. */
export async function until<T>(
  what: string,
  probe: () => Promise<T | undefined | false>,
  timeoutMs = 60_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 300));
  }
}

/** A CLI run as an assertion message. */
export function show(r: CliResult): string {
  return `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;
}

/** Whether `bottle hosts` lists `hostId` as served by a live worker. */
export async function hostIsLive(harness: BottleHarness, hostId: string): Promise<boolean> {
  const res = await harness.cli(['hosts', '--format', 'json']);
  return res.code === 0 && (JSON.parse(res.stdout) as Array<{ id: string }>).some((x) => x.id === hostId);
}

/** The bottle's row in `bottle list --format json`. */
export async function listedBottle(
  harness: BottleHarness,
  identity: string,
): Promise<{ state: string; host: string } | undefined> {
  const res = await harness.cli(['list', '--format', 'json']);
  const rows = JSON.parse(res.stdout) as Array<{ identity: string; state: string; host: string }>;
  return rows.find((r) => r.identity === identity);
}
