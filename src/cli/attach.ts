import { PassThrough, Readable } from 'node:stream';
import { visibleOutput } from '../shared/visible-text.js';
import { localDocker } from './docker-probe.js';
import type { CliIO } from '../shared/io.js';

/**
 * Attaches the user's terminal to the agent container: raw mode, window
 * size, Ctrl-C delivered to the agent (raw mode sends the byte, the TTY in
 * the container turns it into SIGINT), Docker's detach keys (Ctrl-P Ctrl-Q)
 * leave the bottle running. The one direct Docker use of the CLI.
 */
export const DETACH_KEYS = 'ctrl-p,ctrl-q';

/** The CLI's Docker client (docker-probe.ts), loaded only when a terminal is attached or output streamed. */
const docker = localDocker;

/**
 * `onAttached` runs once keystrokes reach the agent, so a notice printed there is never ahead of raw mode.
 * `redraw` (re-attaching to a session already on screen elsewhere) nudges the container's TTY size so a
 * full-screen agent repaints instead of leaving the terminal blank until its next output.
 */
export async function attachTerminal(
  containerName: string,
  onAttached: () => void,
  opts: { redraw?: boolean } = {},
): Promise<'exited' | 'detached'> {
  const container = (await docker()).getContainer(containerName);
  const stream = await container.attach({
    stream: true,
    stdin: true,
    stdout: true,
    stderr: true,
    hijack: true,
    detachKeys: DETACH_KEYS,
  });

  const stdin = process.stdin;
  const wasRaw = stdin.isTTY ? stdin.isRaw : false;
  const resize = () => {
    if (process.stdout.columns && process.stdout.rows) {
      container.resize({ h: process.stdout.rows, w: process.stdout.columns }).catch(() => undefined);
    }
  };
  if (stdin.isTTY) stdin.setRawMode(true);
  stdin.resume();
  stdin.pipe(stream);
  stream.pipe(process.stdout);
  process.stdout.on('resize', resize);
  if (opts.redraw && process.stdout.rows && process.stdout.columns && process.stdout.rows > 1) {
    // A size change is what makes a TUI repaint (SIGWINCH); the same size twice is no change.
    await container.resize({ h: process.stdout.rows - 1, w: process.stdout.columns }).catch(() => undefined);
  }
  resize();
  onAttached();

  try {
    await new Promise<void>((resolve) => {
      stream.on('end', resolve);
      stream.on('close', resolve);
      stream.on('error', () => resolve());
    });
  } finally {
    process.stdout.off('resize', resize);
    stdin.unpipe(stream);
    if (stdin.isTTY) stdin.setRawMode(wasRaw);
    stdin.pause();
  }
  const info = await container.inspect().catch(() => undefined);
  return info?.State?.Running ? 'detached' : 'exited';
}

/** A note printed over an attached agent's screen starts on a line of its own. */
export function onTerminal(io: CliIO): (line: string) => void {
  return (line) => io.stderr(`\n${line}`);
}

/**
 * Without a terminal, the agent's output still reaches the user; written to something that is not a
 * terminal (a pipe, a file, CI), its control characters are neutralised (see OutputNeutraliser).
 */
export async function streamOutput(containerName: string): Promise<void> {
  await agentOutput(containerName, { follow: true, raw: Boolean(process.stdout.isTTY) });
}

/**
 * The agent container's output as Docker kept it (`bottle logs`): everything
 * since it started, then (`follow`) what follows until it exits. `raw` passes
 * it through untouched, for a terminal, as `docker logs` does; otherwise the
 * untrusted bytes go through OutputNeutraliser. 'gone' when the container no
 * longer exists (the agent exited and its bottle was torn down).
 */
export async function agentOutput(
  containerName: string,
  opts: { follow: boolean; raw: boolean; write?: (text: string | Buffer) => void },
): Promise<'shown' | 'gone'> {
  const write = opts.write ?? ((t: string | Buffer) => void process.stdout.write(t));
  const client = await docker();
  const c = client.getContainer(containerName);
  let tty = true;
  let stream: NodeJS.ReadableStream;
  try {
    tty = (await c.inspect()).Config?.Tty ?? true;
    const logOpts = { stdout: true, stderr: true } as const;
    stream = opts.follow
      ? await c.logs({ ...logOpts, follow: true })
      : Readable.from([await c.logs({ ...logOpts, follow: false })]);
  } catch (err) {
    // An agent that exited may already be torn down (gone) or being removed (conflict); its exit is in the log.
    const status = (err as { statusCode?: number }).statusCode;
    if (status === 404 || status === 409) return 'gone';
    throw err;
  }
  const neutraliser = new OutputNeutraliser();
  const emit = (chunk: Buffer) => {
    if (opts.raw) write(chunk);
    else {
      const text = neutraliser.push(chunk);
      if (text) write(text);
    }
  };
  let source: NodeJS.ReadableStream = stream;
  if (!tty) {
    // Without a TTY Docker frames stdout and stderr; both are the agent's output here.
    const merged = new PassThrough();
    client.modem.demuxStream(stream, merged, merged);
    stream.on('end', () => merged.end());
    source = merged;
  }
  source.on('data', (chunk: Buffer | string) => emit(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk)));
  await new Promise<void>((resolve) => {
    source.on('end', resolve);
    source.on('close', resolve);
    source.on('error', () => resolve());
  });
  if (!opts.raw) {
    const rest = neutraliser.flush();
    if (rest) write(rest);
  }
  return 'shown';
}

// Terminal control sequences: CSI (colours, cursor moves), OSC (titles, hyperlinks), and two-byte escapes.
const CSI = String.raw`\x1b\[[0-?]*[ -/]*[@-~]`;
const OSC = String.raw`\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)`;
const TWO_BYTE = String.raw`\x1b[@-Z\\^_a-z=>]`;
const SEQUENCE = new RegExp(`${OSC}|${CSI}|${TWO_BYTE}`, 'g');
// An escape at the end of a chunk that may still be completed by the next one.
const UNFINISHED = /\x1b(?:\[[0-?]*[ -/]*|\][^\x07\x1b]*\x1b?)?$/;
const MAX_UNFINISHED = 4096;
/**
 * Makes terminal output from inside a bottle safe to print anywhere: control
 * sequences (formatting, cursor moves, titles) are dropped, carriage returns
 * become line ends, and any other control character is shown as `\xNN`
 * instead of acting on the reader's terminal. Stateful: a sequence or a CRLF
 * split between two chunks is handled as one.
 */
export class OutputNeutraliser {
  private pending = '';
  private readonly decoder = new TextDecoder();

  push(chunk: Buffer): string {
    let text = this.pending + this.decoder.decode(chunk, { stream: true });
    const unfinished = UNFINISHED.exec(text);
    const cut = unfinished ? unfinished.index : text.endsWith('\r') ? text.length - 1 : text.length;
    this.pending = text.slice(cut);
    text = text.slice(0, cut);
    if (this.pending.length > MAX_UNFINISHED) {
      // Never completed: shown neutralised rather than held back forever.
      text += this.pending;
      this.pending = '';
    }
    return neutralise(text);
  }

  flush(): string {
    const rest = this.pending + this.decoder.decode();
    this.pending = '';
    return neutralise(rest);
  }
}

function neutralise(text: string): string {
  return visibleOutput(text.replace(SEQUENCE, '').replace(/\r\n|\r/g, '\n'));
}
