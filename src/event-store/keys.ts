import { parseIdentity } from '../shared/identity.js';

/**
 * Redis keys of the event log. The `{<identity>}` hash tag keeps one bottle's
 * keys in one slot, so the append script may touch them together.
 */
export const BOTTLES_INDEX_KEY = 'cb:bottles';

export interface BottleKeys {
  /** The bottle's event stream: never trimmed; entry ids are `<seq>-0`. */
  events: string;
  /** JSON of the live BottleState, written atomically with each append. */
  state: string;
  /** Hash: agent, bottle, host, started_at (from the start request). */
  info: string;
  /** Hash: append cause -> "first-last" seqs, so a retried job never appends twice. */
  causes: string;
}

/** Validates the identity first: it becomes part of a key. */
export function bottleKeys(identity: string): BottleKeys {
  parseIdentity(identity);
  const base = `cb:bottle:{${identity}}`;
  return { events: `${base}:events`, state: `${base}:state`, info: `${base}:info`, causes: `${base}:causes` };
}
