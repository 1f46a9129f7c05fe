import { CapabilityAskSchema, type CapabilityAsk } from '../shared/capability.js';
import { HostPatternError, parseHostPattern } from '../shared/host-pattern.js';
import { HTTP_METHOD, pathGlobProblem } from '../shared/path-glob.js';

/** A reason is read by a person deciding; it is a few sentences, not a document. */
export const MAX_CAPABILITY_REASON_CHARS = 1000;
/**
 * Characters that move the cursor, rewrite the terminal, reorder what is shown or hide in it: C0 controls
 * other than tab and newline, DEL, C1, line/paragraph separators, lone surrogates, and every invisible
 * format character (zero-width, bidirectional controls, tag characters: Unicode's Cf).
 */
const UNSHOWABLE = /[^\P{Cc}\t\n]|[\u2028\u2029]|\p{Cs}|\p{Cf}/u;
/** Blank lines that push a reason's real ending out of sight. */
const PADDING = /\n[ \t]*\n[ \t]*\n[ \t]*\n/;

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
  const { host, methods } = parsed.data;
  return {
    ask: {
      ...parsed.data,
      ...(host !== undefined ? { host: canonicalPattern(host) } : {}),
      ...(methods !== undefined ? { methods: methods.map((m) => m.toUpperCase()) } : {}),
    },
  };
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
  for (const method of ask.methods ?? []) {
    if (!HTTP_METHOD.test(method))
      problems.push(`methods: ${JSON.stringify(method)} is not an HTTP method such as "POST"`);
  }
  for (const glob of ask.paths ?? []) {
    const problem = pathGlobProblem(glob);
    if (problem) problems.push(`paths: ${problem}`);
  }
  if (ask.reason.length > MAX_CAPABILITY_REASON_CHARS) {
    problems.push(`reason: at most ${MAX_CAPABILITY_REASON_CHARS} characters`);
  }
  if (UNSHOWABLE.test(ask.reason)) {
    problems.push('reason: control characters (other than tab and newline) and invisible characters are refused');
  }
  if (PADDING.test(ask.reason)) problems.push('reason: runs of blank lines are refused');
  return problems;
}

/** The host as the allowlist entry an approval would add writes it: lowercase, brackets around IPv6. */
function canonicalPattern(host: string): string {
  const pattern = parseHostPattern(host);
  const name = pattern.host.includes(':') ? `[${pattern.host}]` : pattern.host;
  return pattern.kind === 'subdomains' ? `*.${name}` : name;
}
