export interface Row {
  metric: string;
  value: number;
  unit: string;
  baseline?: number;
  target?: string;
}

export function percentile(samples: number[], p: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[idx];
}

export const median = (xs: number[]) => percentile(xs, 50);

export function printRows(title: string, rows: Row[]): void {
  console.log(`\n${title}`);
  const fmt = (n: number | undefined) =>
    n === undefined || Number.isNaN(n) ? '-' : n >= 100 ? n.toFixed(0) : n.toFixed(3);
  const table = [
    ['metric', 'value', 'baseline (same run)', 'ratio', 'target'],
    ...rows.map((r) => [
      r.metric,
      `${fmt(r.value)} ${r.unit}`,
      r.baseline === undefined ? '-' : `${fmt(r.baseline)} ${r.unit}`,
      r.baseline ? (r.value / r.baseline).toFixed(2) : '-',
      r.target ?? '-',
    ]),
  ];
  const widths = table[0].map((_, i) => Math.max(...table.map((row) => row[i].length)));
  for (const row of table) console.log('  ' + row.map((c, i) => c.padEnd(widths[i])).join('  '));
}
