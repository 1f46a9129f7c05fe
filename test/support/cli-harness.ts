import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import Docker from 'dockerode';
import { Redis } from 'ioredis';
import { removeBottleResources } from '../../src/effects/docker/remove-bottle.js';
import { EventLog } from '../../src/event-store/log.js';
import { storeId } from '../../src/event-store/store-id.js';
import type { LifecycleEvent } from '../../src/events/schema.js';
import { LABELS } from '../../src/shared/names.js';
import { startTestRedis, type TestRedis } from './redis-server.js';
import { processAlive } from '../../src/shared/process-alive.js';

/**
 * Runs the real `bottle` CLI (bin/bottle.js over dist/, so `npm run build`
 * first) against a throwaway redis-server and a temp $CLAUDE_BOTTLE_HOME.
 * The first state-changing command starts a detached worker exactly as a user
 * would get one; `cleanup()` ends that worker by its pid, tears down every
 * bottle the harness's Redis knows or its store labelled (see `store`), and
 * removes the temp folders.
 */
// The repository root: the nearest folder up with bin/bottle.js. Walking up (rather than a fixed
// '../..') keeps it right when this module is bundled elsewhere, e.g. into .bottle-test/ by `npm run bench`.
export const REPO = findRepo(import.meta.dirname);
function findRepo(from: string): string {
  for (let dir = from; dir !== dirname(dir); dir = dirname(dir))
    if (existsSync(join(dir, 'bin', 'bottle.js'))) return dir;
  return resolve(from, '..', '..');
}
export const BOTTLE_BIN = join(REPO, 'bin', 'bottle.js');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** A CLI still running: its identity once printed, and its exit. */
export interface StartingCli {
  /** The first stdout line once printed ('' when the CLI ended without one). */
  identity: Promise<string>;
  exit: Promise<CliResult>;
  child: ChildProcess;
}

export interface CliOptions {
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
  cwd?: string;
  askToLaunch?: boolean;
}

export interface BottleHarness {
  home: string;
  /**
   * The working folder `cli` and `startDetached` run in unless told otherwise: an empty temp folder,
   * since the agent may write to its working folder and so is refused this repository (the installation).
   */
  project: string;
  redis: TestRedis;
  /**
   * The id of the harness's event store, minted when it starts: its workers label every Docker
   * resource with it (LABELS.store), so cleanup finds what a start left before Redis knew the bottle.
   */
  store: string;
  env: NodeJS.ProcessEnv;
  log: EventLog;
  docker: Docker;
  /** Writes `manifest` (and extra files relative to it) into a temp folder; returns the manifest path. */
  writeManifest(manifest: unknown, files?: Record<string, string>): string;
  /**
   * Runs `bottle ARGS` without a terminal. `start` and `resume` get `--yes` (without a terminal they
   * refuse to launch unasked) unless `askToLaunch` is set, for the tests of that refusal.
   */
  cli(args: string[], opts?: CliOptions): Promise<CliResult>;
  /**
   * Spawns `bottle ARGS` (a `start --detach`, `--yes` added as by `cli`) and gives its identity as soon
   * as it is printed, before the CLI exits: among many starts, one that never runs hides no other.
   */
  startDetached(args: string[]): StartingCli;
  waitForEvent(identity: string, type: string, timeoutMs?: number): Promise<LifecycleEvent[]>;
  cleanup(): Promise<void>;
}

export async function startHarness(opts: { env?: NodeJS.ProcessEnv } = {}): Promise<BottleHarness> {
  if (!existsSync(join(REPO, 'dist', 'cli', 'main.js')) || !existsSync(join(REPO, 'dist', 'gateway', 'gateway.cjs'))) {
    throw new Error('dist/ is missing: run `npm run build` before the integration tests (npm test does)');
  }
  const home = mkdtempSync(join(tmpdir(), 'cb-home-'));
  const project = mkdtempSync(join(tmpdir(), 'cb-project-'));
  const redis = await startTestRedis();
  const redisConn = new Redis({ path: redis.socket, maxRetriesPerRequest: null });
  redisConn.on('error', () => undefined);
  const store = await storeId(redisConn);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    CLAUDE_BOTTLE_HOME: home,
    REDIS_URL: redis.url,
    // Never inherit an operator's manifest or credentials.
    CLAUDE_BOTTLE_MANIFEST: undefined,
    CLAUDE_BOTTLE_OAUTH_TOKEN: undefined,
    ANTHROPIC_API_KEY: undefined,
    ...opts.env,
  };
  for (const k of Object.keys(env)) if (env[k] === undefined) delete env[k];
  const docker = new Docker();
  const log = new EventLog(redisConn);
  const manifestDirs: string[] = [];

  const harness: BottleHarness = {
    home,
    project,
    redis,
    store,
    env,
    log,
    docker,
    writeManifest(manifest, files = {}) {
      const dir = mkdtempSync(join(tmpdir(), 'cb-manifest-'));
      manifestDirs.push(dir);
      for (const [rel, content] of Object.entries(files)) {
        mkdirSync(dirname(join(dir, rel)), { recursive: true });
        writeFileSync(join(dir, rel), content);
      }
      const path = join(dir, 'claude-bottle.json');
      writeFileSync(path, JSON.stringify(manifest, null, 2));
      return path;
    },
    cli(args, o = {}) {
      const argv = o.askToLaunch ? args : withYes(args);
      const { child, exit } = runBottle(argv, o.cwd ?? project, { ...env, ...o.env });
      const timer = setTimeout(() => child.kill('SIGKILL'), o.timeoutMs ?? 240_000);
      return exit.finally(() => clearTimeout(timer));
    },
    startDetached(args) {
      let printed: (identity: string) => void = () => undefined;
      const identity = new Promise<string>((resolveIdentity) => (printed = resolveIdentity));
      const { child, exit } = runBottle(withYes(args), project, env, (stdout) => {
        if (!stdout.includes('\n')) return;
        try {
          printed(identityFrom({ code: 0, stdout, stderr: '' }));
        } catch {
          printed('');
        }
      });
      void exit.finally(() => printed(''));
      return { identity, exit, child };
    },
    async waitForEvent(identity, type, timeoutMs = 120_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const events = await log.read(identity);
        if (events.some((e) => e.type === type)) return events;
        if (Date.now() > deadline)
          throw new Error(
            `${identity}: no ${type} within ${timeoutMs} ms; saw ${events.map((e) => e.type).join(', ')}`,
          );
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    async cleanup() {
      const pidFile = join(home, 'worker', 'worker.pid');
      if (existsSync(pidFile)) {
        const pid = Number(readFileSync(pidFile, 'utf8').trim());
        if (pid > 0) await endProcess(pid);
      }
      const identities = new Set<string>();
      for (const entry of await log.listBottles().catch(() => [])) identities.add(entry.identity);
      // Also what the store labelled but never indexed, such as the networks of a start that failed early.
      for (const identity of await storeLabelledIdentities(docker, store)) identities.add(identity);
      const all = [...identities];
      // A few at a time: a run of many bottles is torn down in reasonable time without flooding the daemon.
      for (let i = 0; i < all.length; i += 10) {
        await Promise.all(all.slice(i, i + 10).map((id) => removeBottleResources(docker, id).catch(() => undefined)));
      }
      redisConn.disconnect();
      await redis.destroy();
      rmSync(home, { recursive: true, force: true });
      rmSync(project, { recursive: true, force: true });
      for (const d of manifestDirs) rmSync(d, { recursive: true, force: true });
    },
  };
  return harness;
}

/** The identities on any container or network labelled with event store STORE. */
export async function storeLabelledIdentities(docker: Docker, store: string): Promise<Set<string>> {
  const filters = JSON.stringify({ label: [`${LABELS.store}=${store}`] });
  const [containers, networks] = await Promise.all([
    docker.listContainers({ all: true, filters }),
    docker.listNetworks({ filters }),
  ]);
  const labels = [...containers.map((c) => c.Labels), ...networks.map((n) => n.Labels ?? {})];
  return new Set(labels.map((l) => l[LABELS.identity]).filter((id): id is string => !!id));
}

/** Spawns `bottle ARGV`; EXIT gives what it printed once it closes. ON_STDOUT sees the output so far. */
function runBottle(
  argv: string[],
  cwd: string,
  env: NodeJS.ProcessEnv,
  onStdout: (stdout: string) => void = () => undefined,
): { child: ChildProcess; exit: Promise<CliResult> } {
  const child = spawn(process.execPath, [BOTTLE_BIN, ...argv], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (b: Buffer) => onStdout((stdout += b.toString())));
  child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
  const exit = new Promise<CliResult>((resolveExit) => {
    child.on('close', (code, signal) => resolveExit({ code: code ?? (signal ? 128 : 1), stdout, stderr }));
  });
  return { child, exit };
}

/** ARGS with `--yes` after a `start` or `resume` command that has none (before any `--`). */
export function withYes(args: string[]): string[] {
  let i = 0;
  while (i < args.length && args[i].startsWith('-') && args[i] !== '--') i += args[i] === '--manifest' ? 2 : 1;
  if (args[i] !== 'start' && args[i] !== 'resume') return args;
  const end = args.indexOf('--') === -1 ? args.length : args.indexOf('--');
  if (args.slice(0, end).some((a) => a === '--yes' || a === '-y')) return args;
  return [...args.slice(0, i + 1), '--yes', ...args.slice(i + 1)];
}

async function endProcess(pid: number): Promise<void> {
  const alive = () => processAlive(pid);
  if (!alive()) return;
  process.kill(pid, 'SIGTERM');
  for (let i = 0; i < 100 && alive(); i++) await new Promise((r) => setTimeout(r, 100));
  if (alive()) process.kill(pid, 'SIGKILL');
}

/** The first stdout line of `start --detach`. */
export function identityFrom(result: CliResult): string {
  const first = result.stdout.split('\n')[0]?.trim() ?? '';
  if (!/^[a-z0-9][a-z0-9_-]*-[0-9a-z]{5}$/.test(first)) {
    throw new Error(
      `start --detach did not print an identity first (code ${result.code})\n` +
        `stdout: ${result.stdout}\nstderr: ${result.stderr}`,
    );
  }
  return first;
}

/**
 * Pins the hosts Claude Code contacts by default to the Docker host, so that a
 * test bottle can never reach the internet through an allowlisted default
 * even if the agent tries: nothing listens there on 443.
 */
export const PIN_DEFAULT_HOSTS: Record<string, string> = {
  'api.anthropic.com': 'host-gateway',
  'statsig.anthropic.com': 'host-gateway',
  'console.anthropic.com': 'host-gateway',
  'claude.ai': 'host-gateway',
  'sentry.io': 'host-gateway',
};
