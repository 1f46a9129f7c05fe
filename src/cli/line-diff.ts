/**
 * A line diff for showing an operator what a Dockerfile request changes. No
 * diff library is installed or in the offline npm cache, and Dockerfiles are
 * short, so this is the textbook longest-common-subsequence table over the
 * lines between the common head and tail.
 */

export interface DiffLine {
  op: ' ' | '-' | '+';
  text: string;
}

/** Above this many table cells the diff degrades to "all old lines removed, all new lines added": still complete. */
const MAX_TABLE_CELLS = 4_000_000;

export function lineDiff(before: readonly string[], after: readonly string[]): DiffLine[] {
  let head = 0;
  while (head < before.length && head < after.length && before[head] === after[head]) head++;
  let tail = 0;
  while (
    tail < before.length - head &&
    tail < after.length - head &&
    before[before.length - 1 - tail] === after[after.length - 1 - tail]
  ) {
    tail++;
  }
  const a = before.slice(head, before.length - tail);
  const b = after.slice(head, after.length - tail);
  const same = (lines: readonly string[]) => lines.map((text): DiffLine => ({ op: ' ', text }));
  return [...same(before.slice(0, head)), ...middleDiff(a, b), ...same(before.slice(before.length - tail))];
}

function middleDiff(a: readonly string[], b: readonly string[]): DiffLine[] {
  const removed = a.map((text): DiffLine => ({ op: '-', text }));
  const added = b.map((text): DiffLine => ({ op: '+', text }));
  const tooBig = (a.length + 1) * (b.length + 1) > MAX_TABLE_CELLS;
  if (a.length === 0 || b.length === 0 || tooBig) return [...removed, ...added];
  const width = b.length + 1;
  // common[i * width + j]: length of the longest common subsequence of a[i..] and b[j..].
  const common = new Uint32Array((a.length + 1) * width);
  for (let i = a.length - 1; i >= 0; i--) {
    for (let j = b.length - 1; j >= 0; j--) {
      const below = common[(i + 1) * width + j];
      const right = common[i * width + j + 1];
      common[i * width + j] = a[i] === b[j] ? common[(i + 1) * width + j + 1] + 1 : Math.max(below, right);
    }
  }
  const out: DiffLine[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    if (a[i] === b[j]) {
      out.push({ op: ' ', text: a[i] });
      i++;
      j++;
    } else if (common[(i + 1) * width + j] >= common[i * width + j + 1]) {
      out.push({ op: '-', text: a[i++] });
    } else {
      out.push({ op: '+', text: b[j++] });
    }
  }
  return [...out, ...removed.slice(i), ...added.slice(j)];
}
