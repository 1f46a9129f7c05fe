import { MAX_PERCENT_LEVELS, percentLevels } from './decoded-views.js';
import { shannonBitsPerChar } from './hostname-entropy.js';

/**
 * Signs in a URL that it carries data no reader was meant to see, when no credential shape is found
 * in it: percent-encoding nested deeper than any client nests it, or a long token of random-looking
 * letters and digits in the path or query (a key, an encrypted blob). Tokens with a structure of their
 * own (hex digests, UUIDs, version strings, words joined by separators) are not random-looking.
 */
export interface UrlSignal {
  rule: 'nested_percent_encoding' | 'high_entropy_url_token';
  /** What the fingerprint is taken of. */
  match: string;
}

/** Shorter tokens are ids and hashes people paste into URLs every day. */
const MIN_TOKEN_CHARS = 24;
/** Random letters and digits reach about 4.5 bits a character at this length; words, ids and counters stay below. */
const MIN_TOKEN_BITS = 4.2;
/** Letters and digits only, split at everything else (path separators, `=`, `&`, `+`, `.`, `-`, `_`). */
const TOKEN = /[A-Za-z0-9]+/g;

export function urlSignal(url: string): UrlSignal | undefined {
  if (percentLevels(url) >= MAX_PERCENT_LEVELS) return { rule: 'nested_percent_encoding', match: url };
  const target = url.replace(/^[a-z]+:\/\/[^/]*/i, '');
  for (const [token] of target.matchAll(TOKEN))
    if (looksRandom(token)) return { rule: 'high_entropy_url_token', match: token };
  return undefined;
}

/** Mixed case and digits together, long, and close to uniformly spread over its symbols. */
function looksRandom(token: string): boolean {
  if (token.length < MIN_TOKEN_CHARS) return false;
  if (!/[a-z]/.test(token) || !/[A-Z]/.test(token) || !/[0-9]/.test(token)) return false;
  return shannonBitsPerChar(token) >= MIN_TOKEN_BITS;
}
