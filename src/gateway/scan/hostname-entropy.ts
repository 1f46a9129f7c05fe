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

/** Data spelled a few characters per label adds up: this much of it across the labels is refused too. */
const MIN_DATA_CHARS = 24;
/** A label this long mixing letters and digits is base32 or base64 (services name hosts with words). */
const MIN_MIXED_LABEL_CHARS = 16;
/** A token's vendor prefix as the first label: the token is being spelled out label by label. */
const TOKEN_PREFIX_LABEL = /^(?:gh[pousr]|github_pat|glpat|xox[abposr]|akia|asia|sk|npm|hf)[-_]/;

/** The labels the agent chose (those left of the wildcard's domain) read like encoded data. */
export function looksLikeEncodedLabels(host: string, wildcardDomain: string): boolean {
  if (!host.endsWith(`.${wildcardDomain}`)) return false;
  const chosen = host.slice(0, -(wildcardDomain.length + 1));
  if (chosen.length > MAX_SUBDOMAIN_CHARS) return true;
  const labels = chosen.split('.');
  if (TOKEN_PREFIX_LABEL.test(labels[0])) return true;
  if (labels.some((label) => label.length >= MIN_LABEL_CHARS && looksEncoded(label))) return true;
  if (labels.some((label) => label.length >= MIN_MIXED_LABEL_CHARS && mixesLettersAndDigits(label))) return true;
  const data = labels.filter((label) => label.length >= 8 && (isHex(label) || mixesLettersAndDigits(label)));
  return data.reduce((sum, label) => sum + label.length, 0) >= MIN_DATA_CHARS;
}

function isHex(label: string): boolean {
  return /^[0-9a-f]+$/.test(label);
}

/** Only letters and digits, at least two of each: no word, and not a number. */
function mixesLettersAndDigits(label: string): boolean {
  return /^[a-z0-9]+$/.test(label) && /[0-9].*[0-9]/.test(label) && /[a-z].*[a-z]/.test(label);
}

/** Hex has only sixteen symbols, so a short sample of it measures below the threshold: its shape says enough. */
function looksEncoded(label: string): boolean {
  return isHex(label) || shannonBitsPerChar(label) > MAX_BITS_PER_CHAR;
}
