import { decodedViews } from './decoded-views.js';
import { base58CheckValid, bech32Valid, ibanValid, mixedCaseHex } from './checksums.js';
import { hasTokenRunInText } from './token-runs.js';

/**
 * Credential shapes: what a secret the gateway does not hold looks like when it leaves. Each is
 * specific enough (a vendor prefix, a fixed structure, a checksum) that ordinary code, UUIDs, git
 * object names and base64 of binary data do not match. Scanned as latin1 text, so a byte is a char.
 */
export interface SecretPattern {
  name: string;
  regex: RegExp;
  /** A second look at a match the shape alone cannot settle (a checksum). */
  accept?: (match: string) => boolean;
  /**
   * The vendor's fixed lead (ghp_, AKIA): a WebSocket message ending in it and too few characters after it
   * may be a credential cut across messages (split-token-joiner.ts).
   */
  prefix?: RegExp;
}

export const SECRET_PATTERNS: readonly SecretPattern[] = [
  { name: 'aws_access_key_id', regex: /\b(?:AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16}\b/, prefix: /AKIA|ASIA|ABIA|ACCA/ },
  {
    name: 'aws_secret_access_key',
    regex: /aws_?secret_?access_?key["'\s]*[:=]\s*["']?[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+])/i,
  },
  { name: 'github_token', regex: /\bgh[pousr]_[A-Za-z0-9]{30,255}\b/, prefix: /gh[pousr]_/ },
  {
    name: 'github_fine_grained_token',
    regex: /\bgithub_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59}\b/,
    prefix: /github_pat_/,
  },
  { name: 'gitlab_token', regex: /\bglpat-[A-Za-z0-9_-]{20,}/, prefix: /glpat-/ },
  { name: 'slack_token', regex: /\bxox[abposr]-[A-Za-z0-9-]{10,}/, prefix: /xox[abposr]-/ },
  {
    name: 'slack_webhook',
    regex: /hooks\.slack\.com\/services\/T[A-Za-z0-9_]+\/B[A-Za-z0-9_]+\/[A-Za-z0-9_]{20,}/,
    prefix: /hooks\.slack\.com\//,
  },
  { name: 'stripe_key', regex: /\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9_]{20,}\b/, prefix: /(?:sk|rk)_(?:live|test)_/ },
  { name: 'sendgrid_api_key', regex: /\bSG\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}/, prefix: /SG\./ },
  { name: 'anthropic_api_key', regex: /\bsk-ant-(?:api|admin|oat)\d{2}-[A-Za-z0-9_-]{20,}/, prefix: /sk-/ },
  {
    name: 'openai_api_key',
    regex: /\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}T3BlbkFJ[A-Za-z0-9_-]{20,}/,
    prefix: /sk-/,
  },
  { name: 'prefixed_secret_key', regex: /\bsk-(?:proj|svcacct|admin|live|test)-[A-Za-z0-9_-]{20,}/, prefix: /sk-/ },
  { name: 'google_api_key', regex: /\bAIza[0-9A-Za-z_-]{35}(?![0-9A-Za-z_-])/, prefix: /AIza/ },
  { name: 'npm_token', regex: /\bnpm_[A-Za-z0-9]{36}\b/, prefix: /npm_/ },
  { name: 'pypi_token', regex: /\bpypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{50,}/, prefix: /pypi-/ },
  { name: 'huggingface_token', regex: /\bhf_[A-Za-z]{34}\b/, prefix: /hf_/ },
  {
    name: 'jwt',
    // Two base64url JSON objects joined by a dot are a token whatever its signature (none, or a short fake one).
    regex: /\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*/,
    prefix: /eyJ/,
  },
  { name: 'private_key_pem', regex: /-----BEGIN (?:[A-Z0-9]+ )?PRIVATE KEY(?: BLOCK)?-----/ },
  {
    name: 'connection_string_password',
    regex: new RegExp(
      String.raw`\b(?:postgres(?:ql)?|mysql|mariadb|mongodb(?:\+srv)?|rediss?|amqps?|mssql|sqlserver)://` +
        String.raw`[^\s:/@"'<>]+:[^\s@/"'<>]{3,}@[^\s/"'<>]+`,
      'i',
    ),
  },
  { name: 'card_number', regex: /\b(?:\d[ -]?){12,18}\d\b/, accept: luhnValidCard },
  { name: 'bitcoin_private_key_wif', regex: /\b[5KL][1-9A-HJ-NP-Za-km-z]{50,51}\b/, accept: base58CheckValid },
  { name: 'bitcoin_address', regex: /\b[13][1-9A-HJ-NP-Za-km-z]{25,34}\b/, accept: base58CheckValid },
  { name: 'bitcoin_segwit_address', regex: /\b(?:bc|tb)1[02-9ac-hj-np-z]{11,71}\b/i, accept: bech32Valid },
  { name: 'ethereum_address', regex: /\b0x[0-9a-fA-F]{40}\b/, accept: mixedCaseHex },
  { name: 'iban', regex: /\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b/, accept: ibanValid },
];

/**
 * Shapes looked for only in text decoded from hex or base64 (decoded-views.ts): an AWS secret key has no
 * prefix, and a bare forty-character token in ordinary text is too often something else (a line of a
 * base64 block, a path); one an agent took the trouble to encode is not.
 */
export const DECODED_ONLY_PATTERNS: readonly SecretPattern[] = [
  {
    name: 'aws_secret_access_key',
    regex: /(?<![A-Za-z0-9/+])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])/,
    accept: (m) => /[A-Z]/.test(m) && /[a-z]/.test(m) && /[0-9]/.test(m) && /[/+]/.test(m),
  },
];

/** A card number: 13 to 19 digits (spaces or dashes between), a known issuer's prefix and a valid Luhn sum. */
export function luhnValidCard(text: string): boolean {
  const digits = text.replace(/[ -]/g, '');
  if (digits.length < 13 || digits.length > 19) return false;
  if (!/^(?:4|5[1-5]|2[2-7]|3[47]|6(?:011|5)|35)/.test(digits)) return false;
  // The same digit over and over passes Luhn by accident (0000...), and is no card.
  if (/^(\d)\1+$/.test(digits)) return false;
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = digits.charCodeAt(digits.length - 1 - i) - 48;
    if (i % 2 === 1) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return sum % 10 === 0;
}

/**
 * Every shape but a connection string matches at least this many token characters in a row
 * (token-runs.ts); a connection string has its `://`.
 */
export const SHORTEST_SHAPE_RUN = 12;
export const SCHEME_SEPARATOR = '://';

/** False only when no shape (decoded-only ones included) can match anywhere in `text`. */
export function mayHoldPattern(text: string): boolean {
  return text.includes(SCHEME_SEPARATOR) || hasTokenRunInText(text, SHORTEST_SHAPE_RUN);
}

/** Compiled once: scanning runs for every request. */
const GLOBAL = new Map<SecretPattern, RegExp>(
  [...SECRET_PATTERNS, ...DECODED_ONLY_PATTERNS].map((p) => [p, new RegExp(p.regex.source, `${p.regex.flags}g`)]),
);

export interface PatternHit {
  pattern: SecretPattern;
  match: string;
  index: number;
}

/**
 * The first credential shape in `text` whose match ends at or after `endsFrom` (earlier ones were reported).
 * `patterns`: these lists or part of them, which `mayHoldPattern` speaks for.
 */
export function findPattern(
  text: string,
  endsFrom = 0,
  patterns: readonly SecretPattern[] = SECRET_PATTERNS,
): PatternHit | undefined {
  if (!mayHoldPattern(text)) return undefined;
  let best: PatternHit | undefined;
  for (const pattern of patterns) {
    const global = GLOBAL.get(pattern)!;
    global.lastIndex = 0;
    for (let m = global.exec(text); m !== null; m = global.exec(text)) {
      if (m.index + m[0].length < endsFrom) continue;
      if (pattern.accept && !pattern.accept(m[0])) continue;
      if (best === undefined || m.index < best.index) best = { pattern, match: m[0], index: m.index };
      break;
    }
  }
  return best;
}

/** The first credential shape in any decoded view of `text` (decoded-views.ts), decoded-only shapes included. */
export function findPatternDecoded(text: string): PatternHit | undefined {
  for (const view of decodedViews(text)) {
    const hit = findPattern(view, 0, ALL_PATTERNS);
    if (hit) return hit;
  }
  return undefined;
}

const ALL_PATTERNS = [...SECRET_PATTERNS, ...DECODED_ONLY_PATTERNS];
