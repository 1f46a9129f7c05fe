import { encodedForms, type EncodedForm } from './encodings.js';
import { NeedleIndex } from './needle-index.js';

/** One secret the gateway holds (a route's or ssh key's, or a canary), named by class and fingerprint. */
export interface HeldSecret {
  class: 'known_secret' | 'canary';
  /** The rule name recorded: the secret's id in the gateway's files (route id, canary kind), never its value. */
  rule: string;
  fingerprint: string;
  value: Buffer;
}

export interface Needle {
  secret: HeldSecret;
  encoding: EncodedForm['encoding'];
  bytes: Buffer;
}

export interface NeedleHit {
  needle: Needle;
  /** Index of the first byte of the match in the searched buffer. */
  index: number;
}

/** Every encoded form of every held secret, searched as plain bytes. */
export class NeedleSet {
  readonly needles: Needle[];
  /** The longest form: a match split across chunks fits in a carry of this many bytes minus one. */
  readonly maxLength: number;
  /** All forms searched in one pass. */
  private readonly index: NeedleIndex;
  /** The forms by their first byte. */
  private readonly startingWith: Buffer[][];

  /**
   * `caseFolded`: the forms in lower case, for text lowered before the search. A host name is, since DNS
   * ignores case, so an agent may spell a secret into one in any case.
   */
  constructor(secrets: HeldSecret[], { caseFolded = false } = {}) {
    const needles = secrets.flatMap((secret) =>
      encodedForms(secret.value).map((form) => ({ secret, encoding: form.encoding, bytes: form.bytes })),
    );
    this.needles = caseFolded ? lowered(needles) : needles;
    this.maxLength = Math.max(0, ...this.needles.map((n) => n.bytes.length));
    this.index = new NeedleIndex(this.needles.map((n) => n.bytes));
    this.startingWith = Array.from({ length: 256 }, () => []);
    for (const { bytes } of this.needles) this.startingWith[bytes[0]].push(bytes);
  }

  get empty(): boolean {
    return this.needles.length === 0;
  }

  /** The first match whose end lies at or after `endsFrom`, so a carried-over match is not found twice. */
  first(haystack: Buffer, endsFrom = 0): NeedleHit | undefined {
    const hit = this.index.first(haystack, endsFrom - this.maxLength + 1, (which) =>
      Math.max(0, endsFrom - this.needles[which].bytes.length + 1),
    );
    return hit && { needle: this.needles[hit.which], index: hit.index };
  }

  /** Every match, left to right, none overlapping (for replacing them). */
  all(haystack: Buffer): NeedleHit[] {
    const hits: NeedleHit[] = [];
    for (let from = 0; ;) {
      const hit = this.index.first(haystack, from, () => from);
      if (!hit) return hits;
      const needle = this.needles[hit.which];
      hits.push({ needle, index: hit.index });
      from = hit.index + needle.bytes.length;
    }
  }

  /**
   * How many bytes at the end of `buffer` could be the start of a form still to be completed by what
   * comes next: only those are held back, so a stream (server-sent events) is not delayed otherwise.
   */
  pendingTail(buffer: Buffer): number {
    // The first position that begins some form unfinished is the longest tail.
    for (let p = Math.max(0, buffer.length - this.maxLength + 1); p < buffer.length; p++) {
      const tail = buffer.length - p;
      for (const bytes of this.startingWith[buffer[p]]) {
        if (tail < bytes.length && isPrefixAt(buffer, p, bytes)) return tail;
      }
    }
    return 0;
  }
}

function isPrefixAt(buffer: Buffer, p: number, bytes: Buffer): boolean {
  for (let i = 1; p + i < buffer.length; i++) if (buffer[p + i] !== bytes[i]) return false;
  return true;
}

function lowered(needles: Needle[]): Needle[] {
  const seen = new Set<string>();
  return needles
    .map((n) => ({ ...n, bytes: Buffer.from(n.bytes.toString('latin1').toLowerCase(), 'latin1') }))
    .filter((n) => {
      const key = `${n.secret.fingerprint}\0${n.bytes.toString('latin1')}`;
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    });
}
