import { visibleText } from '../shared/visible-text.js';

/**
 * A plain-text table: a header row, then one row per entry, columns two spaces apart. Cells are
 * made visible before they are measured, so an escaped control character cannot shift a column;
 * every cell is treated as untrusted, wherever it came from.
 */
export function tableLines(header: readonly string[], rows: readonly (readonly string[])[]): string[] {
  const table = [header, ...rows].map((row) => row.map(visibleText));
  const widths = header.map((_, i) => Math.max(...table.map((row) => row[i].length)));
  return table.map((row) =>
    row
      .map((cell, i) => cell.padEnd(widths[i]))
      .join('  ')
      .trimEnd(),
  );
}
