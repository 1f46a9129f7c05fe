import { describe, expect, it } from 'vitest';
import { tableLines } from '../../../src/cli/table.js';

describe('tableLines', () => {
  it('pads every column to its widest cell, two spaces apart, with no trailing spaces', () => {
    expect(
      tableLines(
        ['HOST', 'BOTTLES'],
        [
          ['a-long-host', '1/4'],
          ['b', '12/16'],
        ],
      ),
    ).toEqual(['HOST         BOTTLES', 'a-long-host  1/4', 'b            12/16']);
  });

  it('measures a cell after its control characters are made visible, so the columns stay aligned', () => {
    const lines = tableLines(['HOST', 'KEY'], [['evil\u001b[2Khost', 'k1']]);
    for (const line of lines) expect(line).not.toMatch(/[\u0000-\u001f\u007f-\u009f]/);
    const keyColumn = lines[0].indexOf('KEY');
    expect(lines[1].indexOf('k1')).toBe(keyColumn);
  });
});
