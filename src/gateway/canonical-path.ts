/**
 * The one reading of a request path that path rules are matched against and
 * that is then forwarded, so the upstream is sent exactly the path a rule
 * judged. Servers disagree on encoded separators, double encoding, `;`
 * parameters and empty segments (OpenShell's L7 allowlist was bypassed with
 * `;.`), so anything that two reasonable servers could read differently is
 * refused as ambiguous instead of guessed at:
 *
 * - percent-encoding is decoded once, and only for unreserved characters
 *   (RFC 3986: A-Z a-z 0-9 - . _ ~); other escapes stay, with uppercase hex;
 * - an encoded `/`, `\`, `;`, `%` (double encoding) or NUL is ambiguous, as
 *   is a raw backslash, control or non-ASCII byte, or a malformed escape;
 * - `//` is refused, not collapsed: some servers collapse it, others route an
 *   empty segment;
 * - dot segments are resolved (`/a/./b/../c` is `/a/c`); climbing above the
 *   root is ambiguous;
 * - a segment whose part before a `;` is empty, `.` or `..` is ambiguous (a
 *   servlet container strips `;params` and would read a dot segment); other
 *   `;` parameters are kept in the path (path-rules.ts refuses a path whose
 *   verdict depends on them);
 * - case is kept: paths are case-sensitive (the host is compared lowercase
 *   elsewhere).
 */
export type CanonicalPath = { ok: true; path: string; query: string } | { ok: false; why: string };

const UNRESERVED = /^[A-Za-z0-9\-._~]$/;
/** Escapes whose decoded byte changes how a server splits or decodes the path. */
const AMBIGUOUS_ESCAPES: Readonly<Record<string, string>> = {
  '2F': 'an encoded "/" (%2F)',
  '5C': 'an encoded "\\" (%5C)',
  '25': 'double percent-encoding (%25)',
  '3B': 'an encoded ";" (%3B)',
  '00': 'an encoded NUL (%00)',
};

/** Canonicalises an origin-form request target (`/path?query`). */
export function canonicalPath(target: string): CanonicalPath {
  if (!target.startsWith('/')) return refuse('the path does not start with "/"');
  const queryAt = target.indexOf('?');
  const rawPath = queryAt < 0 ? target : target.slice(0, queryAt);
  const query = queryAt < 0 ? '' : target.slice(queryAt);
  if (rawPath.includes('#')) return refuse('a fragment in the request target');
  if (/[^\x21-\x7e]/.test(rawPath)) return refuse('a control, space or non-ASCII byte in the path');
  if (rawPath.includes('\\')) return refuse('a backslash in the path');

  const decoded = decodeUnreserved(rawPath);
  if (!decoded.ok) return decoded;
  if (decoded.text.includes('//')) return refuse('an empty path segment ("//")');

  const segments = decoded.text.split('/').slice(1);
  const out: string[] = [];
  for (let i = 0; i < segments.length; i++) {
    const segment = segments[i];
    const last = i === segments.length - 1;
    const beforeParameters = segment.includes(';') ? segment.slice(0, segment.indexOf(';')) : null;
    if (beforeParameters !== null && (beforeParameters === '' || beforeParameters === '.' || beforeParameters === '..'))
      return refuse('a ";" parameter on an empty or dot segment');
    if (segment === '.') {
      if (last) out.push('');
    } else if (segment === '..') {
      if (out.length === 0) return refuse('".." above the root');
      out.pop();
      if (last) out.push('');
    } else {
      out.push(segment);
    }
  }
  return { ok: true, path: `/${out.join('/')}`, query };
}

/** The path with each segment's `;parameters` removed, as a servlet container would route it. */
export function withoutParameters(path: string): string {
  return path
    .split('/')
    .map((segment) => (segment.includes(';') ? segment.slice(0, segment.indexOf(';')) : segment))
    .join('/');
}

function decodeUnreserved(raw: string): { ok: true; text: string } | { ok: false; why: string } {
  let text = '';
  for (let i = 0; i < raw.length; i++) {
    const ch = raw[i];
    if (ch !== '%') {
      text += ch;
      continue;
    }
    const hex = raw.slice(i + 1, i + 3).toUpperCase();
    if (!/^[0-9A-F]{2}$/.test(hex)) return refuse('a malformed percent-escape');
    const ambiguous = AMBIGUOUS_ESCAPES[hex];
    if (ambiguous) return refuse(ambiguous);
    const char = String.fromCharCode(parseInt(hex, 16));
    text += UNRESERVED.test(char) ? char : `%${hex}`;
    i += 2;
  }
  return { ok: true, text };
}

function refuse(why: string): { ok: false; why: string } {
  return { ok: false, why };
}
