import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BOTTLE_BIN, type BottleHarness } from './cli-harness.js';

/**
 * Real terminals for tests: a command runs in a detached tmux session (tmux owns the pty, as a
 * user's terminal would), the test types with send-keys and reads the screen with capture-pane.
 * Each TestTerminals is a tmux server of its own (-L), so only its sessions are ever touched;
 * `close` ends that server and removes its socket file and scripts, whatever the test did.
 */

/** One word for the shell, whatever it holds. */
export const shellQuote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

export interface TerminalRun {
  session: string;
  /** The pane's text, wrapped lines joined, with some scrollback. */
  screen(): string;
  /** What the pane shows now, without scrollback (a full-screen program's current frame). */
  visible(): string;
  /** Keys as tmux names them (`Enter`, `C-p`, `Down`) or plain text. */
  keys(...keys: string[]): void;
  /** Text typed as is (send-keys -l): nothing in it is read as a key name. */
  type(text: string): void;
  /** Whether the command has ended (its exit code recorded). */
  exited(): boolean;
  /** The command's exit code, once the shell has recorded it. */
  exitCode(timeoutMs?: number): Promise<number>;
}

export class TestTerminals {
  readonly socket: string;
  /** Where the sessions' scripts go; a test may keep files of its own here too (removed by `close`). */
  readonly folder: string;

  constructor(prefix: string) {
    this.socket = `${prefix}-${randomBytes(4).toString('hex')}`;
    this.folder = mkdtempSync(join(tmpdir(), `${prefix}-`));
  }

  tmux(...args: string[]): string {
    return execFileSync('tmux', ['-L', this.socket, ...args], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  }

  /**
   * Runs the shell line `command` from `cwd` in a fresh session of the size given. The shell then
   * records the exit code and keeps the pane, so its last screen can still be read.
   */
  open(command: string, opts: { cwd: string; columns?: number; rows?: number; name?: string }): TerminalRun {
    const session = `${opts.name ?? 'term'}-${randomBytes(3).toString('hex')}`;
    const exitFile = join(this.folder, `${session}.exit`);
    const script = join(this.folder, `${session}.sh`);
    writeFileSync(
      script,
      [`cd ${shellQuote(opts.cwd)}`, command, `echo $? > ${shellQuote(exitFile)}`, 'sleep 3600', ''].join('\n'),
    );
    const size = ['-x', String(opts.columns ?? 120), '-y', String(opts.rows ?? 40)];
    this.tmux('new-session', '-d', '-s', session, ...size, `bash ${shellQuote(script)}`);
    const recorded = () => (existsSync(exitFile) ? readFileSync(exitFile, 'utf8').trim() : '');
    return {
      session,
      screen: () => this.tmux('capture-pane', '-p', '-J', '-S', '-300', '-t', session),
      visible: () => this.tmux('capture-pane', '-p', '-t', session),
      keys: (...keys) => void this.tmux('send-keys', '-t', session, ...keys),
      type: (text) => void this.tmux('send-keys', '-t', session, '-l', text),
      exited: () => recorded() !== '',
      exitCode: async (timeoutMs = 120_000) => {
        const deadline = Date.now() + timeoutMs;
        while (!recorded()) {
          if (Date.now() > deadline) throw new Error(`${session}: the command never exited`);
          await new Promise((r) => setTimeout(r, 200));
        }
        return Number(recorded());
      },
    };
  }

  /** Ends the server with every session on it; safe to call when it never started. */
  close(): void {
    try {
      this.tmux('kill-server');
    } catch {
      /* never started, or already gone */
    }
    // The server leaves its socket file behind.
    rmSync(join(process.env.TMUX_TMPDIR ?? '/tmp', `tmux-${process.getuid?.() ?? 0}`, this.socket), { force: true });
    rmSync(this.folder, { recursive: true, force: true });
  }
}

/**
 * The shell line that runs `bottle ARGS` against the harness's home and Redis, with nothing else
 * of the test's environment but `extraEnv` (and the terminal's TERM).
 */
export function bottleCommandLine(h: BottleHarness, args: string[], extraEnv: Record<string, string> = {}): string {
  const env = {
    PATH: h.env.PATH ?? '/usr/bin:/bin',
    HOME: h.env.HOME ?? '/root',
    CLAUDE_BOTTLE_HOME: h.home,
    REDIS_URL: h.redis.url,
    ...extraEnv,
  };
  const assignments = Object.entries(env).map(([k, v]) => `${k}=${shellQuote(v)}`);
  const argv = [process.execPath, BOTTLE_BIN, ...args].map(shellQuote);
  return `env -i ${assignments.join(' ')} TERM="$TERM" ${argv.join(' ')}`;
}
