import type Docker from 'dockerode';
import { PassThrough } from 'node:stream';
import {
  isReadyLine,
  parseDecisionLine,
  parseReadyLine,
  type DecisionLine,
  type ReadyLine,
} from '../../gateway/protocol.js';
import { PermanentEffectError } from '../types.js';

/**
 * Reading container output. The gateway prints one JSON line per decision on
 * stdout; its container has no TTY, so Docker multiplexes stdout/stderr into
 * 8-byte framed chunks that must be demultiplexed before splitting lines.
 */

/** Splits a byte stream into lines, keeping a partial last line until the next chunk completes it. */
export class LineSplitter {
  private pending = '';
  private readonly decoder = new TextDecoder();
  push(chunk: Buffer): string[] {
    this.pending += this.decoder.decode(chunk, { stream: true });
    const lines = this.pending.split('\n');
    this.pending = lines.pop() ?? '';
    return lines;
  }
  flush(): string[] {
    const rest = this.pending + this.decoder.decode();
    this.pending = '';
    return rest ? [rest] : [];
  }
}

/** Demultiplexes a non-TTY log buffer (as returned by `logs({ follow: false })`). */
export function demuxLogBuffer(buf: Buffer): { stdout: string; stderr: string } {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  let offset = 0;
  while (offset + 8 <= buf.length) {
    const kind = buf[offset];
    const size = buf.readUInt32BE(offset + 4);
    const frame = buf.subarray(offset + 8, offset + 8 + size);
    (kind === 2 ? err : out).push(frame);
    offset += 8 + size;
  }
  return { stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') };
}

export interface FollowOptions {
  /** Decisions numbered at or below this were already recorded by an earlier watcher. */
  sinceN: number;
  signal?: AbortSignal;
  onLine: (decision: DecisionLine) => void | Promise<void>;
}

/** Delivers decisions above a moving high-water mark, in order, one onLine at a time. */
class DecisionDelivery {
  private chain: Promise<void> = Promise.resolve();
  constructor(
    public highest: number,
    private readonly onLine: FollowOptions['onLine'],
  ) {}
  lines(lines: string[]): void {
    for (const line of lines) {
      const decision = parseDecisionLine(line);
      if (!decision || decision.n <= this.highest) continue;
      this.highest = decision.n;
      this.chain = this.chain.then(() => this.onLine(decision));
    }
  }
  done(): Promise<void> {
    return this.chain;
  }
}

/**
 * Follows the gateway's stdout until the container stops (the log stream ends)
 * or `signal` aborts. Resolves with the highest decision number delivered.
 * onLine is awaited in order, so events reach the log in the gateway's order.
 */
export async function followDecisionLines(
  docker: Docker,
  gateway: Docker.Container,
  opts: FollowOptions,
): Promise<number> {
  const delivery = new DecisionDelivery(opts.sinceN, opts.onLine);
  if (opts.signal?.aborted) return opts.sinceN;
  const stream = (await gateway.logs({
    follow: true,
    stdout: true,
    stderr: false,
  })) as unknown as NodeJS.ReadableStream & {
    destroy?: () => void;
  };
  const stdout = new PassThrough();
  docker.modem.demuxStream(stream, stdout, new PassThrough().resume());
  const splitter = new LineSplitter();
  await new Promise<void>((resolve, reject) => {
    let settled = false;
    const settle = (err?: Error) => {
      if (settled) return;
      settled = true;
      opts.signal?.removeEventListener('abort', onAbort);
      if (err) reject(err);
      else resolve();
    };
    const onAbort = () => {
      stream.destroy?.();
      settle();
    };
    // The abort may have come while logs() was still connecting.
    if (opts.signal?.aborted) return onAbort();
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    stdout.on('data', (chunk: Buffer) => delivery.lines(splitter.push(chunk)));
    // The demuxer writes synchronously on the source's data events; ending the
    // PassThrough after the source ends lets every written chunk drain first.
    stdout.on('end', () => settle());
    stream.on('end', () => stdout.end());
    stream.on('close', () => stdout.end());
    stream.on('error', (err: Error) => settle(opts.signal?.aborted ? undefined : err));
  });
  delivery.lines(splitter.flush());
  await delivery.done();
  return delivery.highest;
}

/**
 * One pass over everything the gateway printed so far: used after the agent
 * exits to pick up decisions a follower had not yet seen.
 */
export async function drainDecisionLines(
  gateway: Docker.Container,
  opts: Pick<FollowOptions, 'sinceN' | 'onLine'>,
): Promise<number> {
  const delivery = new DecisionDelivery(opts.sinceN, opts.onLine);
  const raw = await gateway.logs({ follow: false, stdout: true, stderr: false });
  const { stdout } = demuxLogBuffer(raw);
  delivery.lines(stdout.split('\n'));
  await delivery.done();
  return delivery.highest;
}

/** The wait's deadline passed while the container still ran. */
export class ReadyTimeout extends Error {}

export interface ReadyWaitOptions {
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** Output kept for a sidecar's "last words" when it dies before it is ready. */
const LAST_WORDS_BYTES = 4096;

/**
 * Waits until a sidecar (the gateway, pipelock) prints its ready line on
 * stdout, so the agent never starts against a proxy that is not listening yet.
 * It follows the log stream rather than polling: the agent's start waits on
 * this, and a poll interval would be added to every launch.
 * A sidecar that exits first (bad config, missing secret) will not come up on
 * a retry either: that is a PermanentEffectError carrying its own last words.
 */
export async function waitForReadyLine(
  container: Docker.Container,
  what: string,
  isReady: (line: string) => boolean,
  opts: ReadyWaitOptions = {},
): Promise<void> {
  const deadline = Date.now() + (opts.timeoutMs ?? 30_000);
  for (;;) {
    const { outcome, lastWords } = await followUntilReady(container, what, isReady, deadline, opts.signal);
    // A ready line from a container that has died since must not count.
    const info = await container.inspect();
    if (info.State.Running && outcome === 'ready') return;
    if (!info.State.Running) {
      throw new PermanentEffectError(
        `${what} exited (code ${info.State.ExitCode}) before it was ready: ${lastWords || 'no output'}`,
      );
    }
    // The log stream ended while the container still runs (daemon hiccup): follow again.
  }
}

async function followUntilReady(
  container: Docker.Container,
  what: string,
  isReady: (line: string) => boolean,
  deadline: number,
  signal: AbortSignal | undefined,
): Promise<{ outcome: 'ready' | 'ended'; lastWords: string }> {
  if (signal?.aborted) throw new Error(`interrupted while waiting for ${what}`);
  const stream = (await container.logs({
    follow: true,
    stdout: true,
    stderr: true,
  })) as unknown as NodeJS.ReadableStream & { destroy?: () => void };
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  (container.modem as Docker['modem']).demuxStream(stream, stdout, stderr);
  const splitter = new LineSplitter();
  let tail = '';
  const remember = (chunk: Buffer) => {
    tail = (tail + chunk.toString('utf8')).slice(-LAST_WORDS_BYTES);
  };
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  try {
    const outcome = await new Promise<'ready' | 'ended'>((resolve, reject) => {
      timer = setTimeout(
        () => reject(new ReadyTimeout(`${what} did not report ready in time`)),
        Math.max(0, deadline - Date.now()),
      );
      onAbort = () => reject(new Error(`interrupted while waiting for ${what}`));
      signal?.addEventListener('abort', onAbort, { once: true });
      stdout.on('data', (chunk: Buffer) => {
        remember(chunk);
        if (splitter.push(chunk).some(isReady)) resolve('ready');
      });
      stderr.on('data', remember);
      const ended = () => resolve(splitter.flush().some(isReady) ? 'ready' : 'ended');
      stream.on('end', ended);
      stream.on('close', ended);
      stream.on('error', reject);
    });
    return { outcome, lastWords: tail.trim().split('\n').slice(-3).join(' | ') };
  } finally {
    clearTimeout(timer);
    if (onAbort) signal?.removeEventListener('abort', onAbort);
    stream.destroy?.();
  }
}

/** Waits for the gateway's `{"t":"ready"}` line. */
export function waitForGatewayReady(gateway: Docker.Container, opts: ReadyWaitOptions = {}): Promise<void> {
  return waitForReadyLine(gateway, 'gateway', isReadyLine, opts);
}

/** The ready line of a gateway that has printed one, else undefined. */
export async function readGatewayReadyLine(gateway: Docker.Container): Promise<ReadyLine | undefined> {
  const raw = await gateway.logs({ follow: false, stdout: true, stderr: false });
  for (const line of demuxLogBuffer(raw).stdout.split('\n')) {
    const ready = parseReadyLine(line);
    if (ready) return ready;
  }
  return undefined;
}
