/**
 * A process killed by signal N exits with status 128+N, by shell convention;
 * Docker reports a container's exit status the same way.
 */
const SIGNAL_NAMES: Readonly<Record<number, string>> = {
  1: 'SIGHUP',
  2: 'SIGINT',
  3: 'SIGQUIT',
  6: 'SIGABRT',
  9: 'SIGKILL',
  11: 'SIGSEGV',
  13: 'SIGPIPE',
  14: 'SIGALRM',
  15: 'SIGTERM',
};

/** The signal an exit status > 128 stands for, `SIG<N>` when unnamed; null for a normal exit. */
export function signalForExitCode(code: number): string | null {
  if (code <= 128 || code >= 128 + 65) return null;
  const n = code - 128;
  return SIGNAL_NAMES[n] ?? `SIG${n}`;
}
