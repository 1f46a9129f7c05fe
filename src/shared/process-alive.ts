import { readFileSync } from 'node:fs';

/**
 * Whether a process still runs. An exited orphan stays a zombie until its new
 * parent reaps it, and signal 0 still reaches a zombie, so that state counts
 * as gone.
 */
export function processAlive(pid: number): boolean {
  if (!(pid > 0)) return false;
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    // /proc/<pid>/stat: "pid (comm) state ..."; comm may contain spaces and parentheses.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const afterComm = stat.lastIndexOf(')') + 2;
    return stat.slice(afterComm, afterComm + 1) !== 'Z';
  } catch {
    return true;
  }
}
