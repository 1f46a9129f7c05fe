import { visibleText } from '../../shared/visible-text.js';
import { tableLines } from '../table.js';
import type { DecisionView, EgressView } from './fold.js';

/**
 * The egress view as text: the per-host table, then the latest decisions.
 * Hosts, methods, reasons and rule names can come from the agent's traffic,
 * so every cell and line is made visible (tableLines does it for cells).
 */

const HOST_HEADER = ['HOST', 'ALLOWED', 'DENIED', 'UP', 'DOWN', 'METHODS', 'LAST SEEN'];

export function egressHostLines(view: EgressView, maxHosts = Infinity): string[] {
  if (view.hosts.length === 0) return ['no egress recorded yet'];
  const shown = view.hosts.slice(0, maxHosts);
  const rows = shown.map((h) => [
    h.host,
    String(h.allowed),
    String(h.denied),
    formatBytes(h.bytes_up),
    formatBytes(h.bytes_down),
    h.methods.join(',') || '-',
    h.last_seen ? shortTime(h.last_seen) : '-',
  ]);
  const more = view.hosts.length - shown.length;
  return [...tableLines(HOST_HEADER, rows), ...(more > 0 ? [`… ${more} more hosts`] : [])];
}

export function decisionLine(d: DecisionView): string {
  const target = d.host ? `${d.host}:${d.port}` : '(unknown target)';
  const detail = d.detail
    ? ` [${d.detail.class} ${d.detail.rule} in ${d.detail.where}` +
      `${d.detail.fingerprint ? ` fp ${d.detail.fingerprint}` : ''}]`
    : '';
  return visibleText(`${shortTime(d.at)} ${d.decision.padEnd(7)} ${d.method || '-'} ${target} ${d.reason}${detail}`);
}

export function egressTextLines(view: EgressView): string[] {
  const decisions = view.decisions.length === 0 ? ['none yet'] : view.decisions.map(decisionLine);
  return [...egressHostLines(view), '', 'LATEST DECISIONS', ...decisions];
}

/** Bytes in the largest unit that keeps a number of at least 1 (1000-based, as network traffic is counted). */
export function formatBytes(bytes: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

/** An event time as the date and time to the second, in UTC as stored. */
function shortTime(at: string): string {
  return at.slice(0, 19).replace('T', ' ');
}
