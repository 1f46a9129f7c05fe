import { CapabilityAskSchema, type CapabilityAsk } from '../shared/capability.js';
import { HostPatternError, parseHostPattern } from '../shared/host-pattern.js';

/** A reason is read by a person deciding; it is a few sentences, not a document. */
export const MAX_CAPABILITY_REASON_CHARS = 1000;
/**
 * Characters that move the cursor, rewrite the terminal or reorder what is shown: C0 controls other
 * than tab and newline, DEL, C1, line/paragraph separators, bidirectional overrides, lone surrogates.
 */
const UNSHOWABLE = /[^\P{Cc}\t\n]|[\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]|\p{Cs}/u;

/** What the agent asked for, its host written as the allowlist would; or every reason the body is refused. */
export type ReadAsk = { ask: CapabilityAsk } | { issues: string[] };

/** Reads the body of `POST /_bottle/capability`: JSON, of the shared schema, then the gateway's own checks. */
export function readCapabilityAsk(body: Buffer): ReadAsk {
  let json: unknown;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch {
    return { issues: ['body is not JSON'] };
  }
  const parsed = CapabilityAskSchema.safeParse(json);
  if (!parsed.success) {
    return { issues: parsed.error.issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`) };
  }
  const problems = askProblems(parsed.data);
  if (problems.length > 0) return { issues: problems };
  const { host } = parsed.data;
  return { ask: { ...parsed.data, ...(host !== undefined ? { host: canonicalPattern(host) } : {}) } };
}

/** What the shared schema leaves to the gateway: the host as the manifest would take it, a showable reason. */
export function askProblems(ask: CapabilityAsk): string[] {
  const problems: string[] = [];
  if (ask.host !== undefined) {
    try {
      const pattern = parseHostPattern(ask.host);
      if (pattern.port !== null) problems.push('host: give the port in "port", not in "host"');
    } catch (err) {
      const why = err instanceof HostPatternError ? err.message : String(err);
      problems.push(`host: ${why}`);
    }
  }
  if (ask.reason.length > MAX_CAPABILITY_REASON_CHARS) {
    problems.push(`reason: at most ${MAX_CAPABILITY_REASON_CHARS} characters`);
  }
  if (UNSHOWABLE.test(ask.reason)) {
    problems.push('reason: control characters (other than tab and newline) and bidirectional overrides are refused');
  }
  return problems;
}

/** The host as the allowlist entry an approval would add writes it: lowercase, brackets around IPv6. */
function canonicalPattern(host: string): string {
  const pattern = parseHostPattern(host);
  const name = pattern.host.includes(':') ? `[${pattern.host}]` : pattern.host;
  return pattern.kind === 'subdomains' ? `*.${name}` : name;
}
