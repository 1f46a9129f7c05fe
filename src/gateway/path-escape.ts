/**
 * Whether a request path tries to climb out of the prefix the gateway maps it
 * under (a route's upstream path, or `/_host/<host>/`). Upstreams and
 * intermediaries normalise dot segments and encoded forms differently, so the
 * gateway refuses anything ambiguous instead of normalising it itself.
 *
 * Servlet containers (Tomcat, Jetty) strip `;parameters` from each segment
 * before resolving dot segments, so `..;x` and `.;` are dot segments too.
 */
export function isPathEscape(rawPath: string): boolean {
  const path = rawPath.split('?')[0].split('#')[0];
  if (path.includes('\\') || path.includes('//')) return true;
  let decoded: string;
  try {
    decoded = decodeURIComponent(path);
  } catch {
    return true; // broken percent-encoding: nothing sane to forward
  }
  if (decoded.includes('\\') || decoded.includes('//') || decoded.includes('\0')) return true;
  // Still percent-encoded after one decode means double encoding ("%252e%252e").
  if (/%(2e|2f|5c|25|3b)/i.test(decoded)) return true;
  return decoded.split('/').some(isDotSegment);
}

function isDotSegment(segment: string): boolean {
  const withoutParameters = segment.split(';')[0];
  return withoutParameters === '..' || withoutParameters === '.';
}

/**
 * The path and query exactly as the client sent them, for either request
 * form: origin-form (`/v1/x`) is returned as is; absolute-form
 * (`http://host/v1/x`) loses only its scheme and authority. WHATWG URL
 * parsing would resolve `..` and hide it from the escape check, so the
 * check always runs on this text instead.
 */
export function rawPathAndQuery(target: string): string {
  const absolute = /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i.exec(target);
  if (!absolute) return target;
  const rest = target.slice(absolute[0].length);
  if (rest === '') return '/';
  return rest.startsWith('/') ? rest : `/${rest}`;
}

/** Methods that reflect the request back (headers included), so the injected secret with it. */
const REFLECTING_METHODS = new Set(['TRACE', 'TRACK']);

export type CredentialRequestRefusal =
  | { reason: 'path_escape'; status: 400; body: { error: 'path_escape'; detail: string } }
  | {
      reason: 'method_not_allowed';
      status: 405;
      body: { error: 'method_not_allowed'; method: string; detail: string };
    };

/**
 * The one check every request that will carry a secret passes, whichever way
 * it came in (credential port, absolute-form through the proxy port, or an
 * intercepted tunnel): on the raw request target, before any parsing that
 * could normalise it.
 */
export function credentialRequestRefusal(method: string, rawTarget: string): CredentialRequestRefusal | null {
  const upperMethod = method.toUpperCase();
  if (REFLECTING_METHODS.has(upperMethod)) {
    return {
      reason: 'method_not_allowed',
      status: 405,
      body: {
        error: 'method_not_allowed',
        method: upperMethod,
        detail: 'TRACE and TRACK would echo the injected credential back',
      },
    };
  }
  if (isPathEscape(rawPathAndQuery(rawTarget))) {
    return {
      reason: 'path_escape',
      status: 400,
      body: {
        error: 'path_escape',
        detail: 'dot segments (also "..;"), "//", backslashes and double encoding are refused',
      },
    };
  }
  return null;
}
