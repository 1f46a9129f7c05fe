/**
 * Finds the leftmost occurrence of any of several byte strings in one pass (Wu-Manber's shift table on
 * byte pairs). A window as long as the shortest string slides over the haystack; the pair at its end
 * says how far it may move without stepping over a start. In bytes that hold no string's pair (random
 * data, most text) it moves a window's length at a time, so a chunk is read once for every string
 * rather than once per string. Only a window whose end pair closes some string's first bytes is
 * compared, with the strings of that pair, in the order given.
 */
export interface IndexHit {
  /** Position of the string in the list given to the index. */
  which: number;
  index: number;
}

/** Below this a pair says too little and the window moves too little: each string is searched on its own. */
const MIN_WINDOW = 4;
/** A shift fits a byte; longer strings are told apart by their first bytes and then compared whole. */
const MAX_WINDOW = 255;

export class NeedleIndex {
  private readonly window: number;
  private readonly shift: Uint8Array | undefined;
  /** Strings whose window-end pair is the key, in the order given. */
  private readonly byEndPair = new Map<number, number[]>();

  constructor(private readonly strings: readonly Uint8Array[]) {
    const shortest = Math.min(...strings.map((s) => s.length));
    this.window = Math.min(shortest, MAX_WINDOW);
    if (strings.length === 0 || this.window < MIN_WINDOW) return;
    const w = this.window;
    this.shift = new Uint8Array(65536).fill(w - 1);
    strings.forEach((s, which) => {
      for (let j = 1; j < w; j++) {
        const pair = (s[j - 1] << 8) | s[j];
        this.shift![pair] = Math.min(this.shift![pair], w - 1 - j);
      }
      const end = (s[w - 2] << 8) | s[w - 1];
      const list = this.byEndPair.get(end) ?? [];
      list.push(which);
      this.byEndPair.set(end, list);
    });
  }

  /**
   * The leftmost occurrence starting at or after `fromOf(which)` for its string; at one position, the
   * string given first. `fromOf` is never below `lowest`, where the search starts.
   */
  first(haystack: Uint8Array, lowest: number, fromOf: (which: number) => number): IndexHit | undefined {
    if (!this.shift) return this.firstEach(haystack, fromOf);
    const { shift, window: w, strings } = this;
    const n = haystack.length;
    for (let end = Math.max(0, lowest) + w - 1; end < n;) {
      const step = shift[(haystack[end - 1] << 8) | haystack[end]];
      if (step > 0) {
        end += step;
        continue;
      }
      const start = end - w + 1;
      for (const which of this.byEndPair.get((haystack[end - 1] << 8) | haystack[end]) ?? []) {
        if (start >= fromOf(which) && occursAt(haystack, strings[which], start)) return { which, index: start };
      }
      end += 1;
    }
    return undefined;
  }

  private firstEach(haystack: Uint8Array, fromOf: (which: number) => number): IndexHit | undefined {
    let best: IndexHit | undefined;
    this.strings.forEach((s, which) => {
      const index = Buffer.from(haystack.buffer, haystack.byteOffset, haystack.length).indexOf(s, fromOf(which));
      if (index >= 0 && (best === undefined || index < best.index)) best = { which, index };
    });
    return best;
  }
}

function occursAt(haystack: Uint8Array, s: Uint8Array, start: number): boolean {
  if (start + s.length > haystack.length) return false;
  for (let i = 0; i < s.length; i++) if (haystack[start + i] !== s[i]) return false;
  return true;
}
