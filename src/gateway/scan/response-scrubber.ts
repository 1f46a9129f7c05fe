import { Transform } from 'node:stream';
import type { ScanFinding } from '../request-scanner.js';
import { heldSecretFinding } from './findings.js';
import type { NeedleHit, NeedleSet } from './needles.js';

/**
 * A response headed for the agent with every held secret, in every form, overwritten by a marker of the
 * same length (so Content-Length stays true). An upstream that echoes the request it got (an echo
 * endpoint, an error page quoting Authorization) must not hand the agent the secret the gateway added.
 */
export function scrubbingStream(needles: NeedleSet, onScrub: (finding: ScanFinding) => void): Transform {
  let held: Buffer = Buffer.alloc(0);
  let reported = false;
  const scrub = (buffer: Buffer): Buffer => {
    const hits = needles.all(buffer);
    if (hits.length === 0) return buffer;
    if (!reported) {
      reported = true;
      onScrub({ ...heldSecretFinding(hits[0], 'response'), action: 'audit' });
    }
    const out = Buffer.from(buffer);
    for (const hit of hits) maskFor(hit).copy(out, hit.index);
    return out;
  };
  return new Transform({
    transform(chunk: Buffer, _enc, callback) {
      const pending = scrub(held.length > 0 ? Buffer.concat([held, chunk]) : chunk);
      const hold = needles.pendingTail(pending);
      held = pending.subarray(pending.length - hold);
      callback(null, pending.subarray(0, pending.length - hold));
    },
    flush(callback) {
      callback(null, held.length > 0 ? held : undefined);
    },
  });
}

/** `[REDACTED known_secret:ab12...]`, cut or padded with `*` to the length of what it replaces. */
export function maskFor(hit: NeedleHit): Buffer {
  const length = hit.needle.bytes.length;
  return Buffer.from(`[REDACTED ${hit.needle.secret.fingerprint}]`.padEnd(length, '*').slice(0, length), 'latin1');
}

/** Header values with every held secret overwritten the same way; returns the first hit, if any. */
export function scrubHeaderValue(needles: NeedleSet, value: string): { value: string; hit?: NeedleHit } {
  const buffer = Buffer.from(value, 'latin1');
  const hits = needles.all(buffer);
  if (hits.length === 0) return { value };
  for (const hit of hits) maskFor(hit).copy(buffer, hit.index);
  return { value: buffer.toString('latin1'), hit: hits[0] };
}
