/**
 * DNS-label exfiltration: under a wildcard entry (`*.example.com`) the agent chooses the labels, so it
 * can spell data into them (`6a1f...e9.example.com`). A label that is long and close to random is
 * refused; names people and services choose (words, short hashes, region codes) are not.
 */
const MIN_LABEL_CHARS = 24;
/** Bits per character: hex of random bytes reaches 4, base32/base64 of them 5 or more; English words stay near 3. */
const MAX_BITS_PER_CHAR = 3.6;
/** A name made of many medium labels carries data as well as one long one. */
const MAX_SUBDOMAIN_CHARS = 100;

export function shannonBitsPerChar(text: string): number {
  const counts = new Map<string, number>();
  for (const ch of text) counts.set(ch, (counts.get(ch) ?? 0) + 1);
  let bits = 0;
  for (const count of counts.values()) {
    const p = count / text.length;
    bits -= p * Math.log2(p);
  }
  return bits;
}

/** The labels the agent chose (those left of the wildcard's domain) read like encoded data. */
export function looksLikeEncodedLabels(host: string, wildcardDomain: string): boolean {
  if (!host.endsWith(`.${wildcardDomain}`)) return false;
  const chosen = host.slice(0, -(wildcardDomain.length + 1));
  if (chosen.length > MAX_SUBDOMAIN_CHARS) return true;
  return chosen.split('.').some((label) => label.length >= MIN_LABEL_CHARS && looksEncoded(label));
}

/** Hex has only sixteen symbols, so a short sample of it measures below the threshold: its shape says enough. */
function looksEncoded(label: string): boolean {
  return /^[0-9a-f]+$/.test(label) || shannonBitsPerChar(label) > MAX_BITS_PER_CHAR;
}
