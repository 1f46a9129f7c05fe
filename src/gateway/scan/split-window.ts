import type { HeldSecret } from './needles.js';

/**
 * A held secret sent a piece at a time, each request to the same host carrying part of it: no single
 * request holds the secret, but together they do. For every host the window remembers which parts of
 * each secret its recent requests carried (pieces of at least FRAGMENT characters), and the request
 * that completes a secret is refused. Memory is bounded: a few hosts, a bitmap per secret, forgotten
 * after a while.
 */
const FRAGMENT = 8;
const MAX_HOSTS = 256;
const WINDOW_MS = 10 * 60_000;
/** Pieces are looked for in this much of each request; the exact matcher covers the whole request. */
const MAX_SCANNED_BYTES = 64 * 1024;

interface HostMemory {
  seen: Map<HeldSecret, Uint8Array>;
  touched: number;
}

export class SplitSecretWindow {
  private readonly grams = new Map<string, Array<{ secret: HeldSecret; at: number }>>();
  private readonly hosts = new Map<string, HostMemory>();

  constructor(
    secrets: HeldSecret[],
    private readonly now: () => number = Date.now,
  ) {
    for (const secret of secrets) {
      const text = secret.value.toString('latin1');
      if (text.length < FRAGMENT * 2) continue;
      for (let at = 0; at + FRAGMENT <= text.length; at++) {
        const gram = text.slice(at, at + FRAGMENT);
        const list = this.grams.get(gram) ?? [];
        list.push({ secret, at });
        this.grams.set(gram, list);
      }
    }
  }

  /** Records the pieces `text` carries for `host`; returns a secret whose every character has now been sent. */
  record(host: string, text: string): HeldSecret | undefined {
    if (this.grams.size === 0 || text.length < FRAGMENT) return undefined;
    const memory = this.memoryFor(host);
    const end = Math.min(text.length, MAX_SCANNED_BYTES);
    const touched = new Set<HeldSecret>();
    for (let i = 0; i + FRAGMENT <= end; i++) {
      const places = this.grams.get(text.slice(i, i + FRAGMENT));
      if (!places) continue;
      for (const { secret, at } of places) {
        let bits = memory.seen.get(secret);
        if (!bits) {
          bits = new Uint8Array(secret.value.length);
          memory.seen.set(secret, bits);
        }
        bits.fill(1, at, at + FRAGMENT);
        touched.add(secret);
      }
    }
    for (const secret of touched) {
      if (memory.seen.get(secret)!.every((b) => b === 1)) {
        memory.seen.delete(secret);
        return secret;
      }
    }
    return undefined;
  }

  private memoryFor(host: string): HostMemory {
    const now = this.now();
    for (const [name, memory] of this.hosts) {
      if (now - memory.touched > WINDOW_MS) this.hosts.delete(name);
    }
    let memory = this.hosts.get(host);
    if (memory) {
      this.hosts.delete(host); // re-inserted last: the map's order is least recently used first
    } else {
      memory = { seen: new Map(), touched: now };
      if (this.hosts.size >= MAX_HOSTS) this.hosts.delete(this.hosts.keys().next().value!);
    }
    memory.touched = now;
    this.hosts.set(host, memory);
    return memory;
  }
}
