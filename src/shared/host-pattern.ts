import { isIP } from 'node:net';

/**
 * One entry of a bottle's egress allowlist: `host`, `*.domain` (subdomains
 * only) or either with `:port`. The gateway matches every CONNECT and plain
 * HTTP request against these, so parsing is strict: anything ambiguous is
 * rejected at manifest load rather than guessed at by the gateway.
 */
export interface HostPattern {
  raw: string;
  kind: 'exact' | 'subdomains';
  /** lowercase ASCII, no leading "*.", no trailing dot; IPv6 without brackets */
  host: string;
  port: number | null;
}

export class HostPatternError extends Error {
  constructor(
    readonly reason: string,
    readonly fix: string,
  ) {
    super(`${reason}; ${fix}`);
    this.name = 'HostPatternError';
  }
}

const LABEL = /^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?$/;
const MAX_LABEL = 63;
const MAX_HOST = 253;

export function parseHostPattern(raw: string): HostPattern {
  if (typeof raw !== 'string')
    throw new HostPatternError('not a string', 'write the host as a JSON string, e.g. "github.com"');
  if (raw.length === 0) throw new HostPatternError('empty host', 'write a host name such as "github.com"');
  if (/\s/.test(raw)) throw new HostPatternError('contains whitespace', 'remove the spaces; one host per entry');
  if (/[^\x21-\x7e]/.test(raw)) {
    throw new HostPatternError(
      'contains non-ASCII characters',
      'write internationalised names in punycode ("xn--...")',
    );
  }
  if (raw.includes('://')) {
    throw new HostPatternError(
      'contains a URL scheme',
      `write only the host (and optional :port), e.g. "${raw.split('://')[1]?.split('/')[0] || 'example.com'}"`,
    );
  }
  if (raw.includes('/'))
    throw new HostPatternError('contains a path', 'paths cannot be filtered; list only the host (and optional :port)');
  if (raw === '*') throw new HostPatternError('"*" alone would allow every host', 'list hosts or use "*.example.com"');

  const { hostPart, port } = splitPort(raw);
  let host = hostPart.toLowerCase();
  let kind: HostPattern['kind'] = 'exact';

  if (host.startsWith('*.')) {
    kind = 'subdomains';
    host = host.slice(2);
    if (host === '' || host === '.') throw new HostPatternError('"*." has no domain after it', 'write "*.example.com"');
  }
  if (host.includes('*')) {
    throw new HostPatternError(
      'wildcard not at the start',
      'a wildcard may only be a leading "*." (e.g. "*.example.com")',
    );
  }
  if (host.endsWith('.')) host = host.slice(0, -1);

  if (isIP(host)) {
    if (kind === 'subdomains')
      throw new HostPatternError('wildcard on an IP address', 'write the IP address alone, without "*."');
    return { raw, kind, host, port };
  }
  validateHostName(host);
  if (kind === 'subdomains' && !host.includes('.')) {
    throw new HostPatternError(
      `"*.${host}" would allow a whole top-level domain`,
      'name a registrable domain, e.g. "*.example.com"',
    );
  }
  return { raw, kind, host, port };
}

function splitPort(raw: string): { hostPart: string; port: number | null } {
  if (raw.startsWith('[')) {
    // Bracketed IPv6, the only way to combine an IPv6 address with a port.
    const close = raw.indexOf(']');
    if (close < 0)
      throw new HostPatternError('unclosed "[" in IPv6 address', 'write "[2001:db8::1]" or "[2001:db8::1]:443"');
    const inner = raw.slice(1, close);
    if (isIP(inner) !== 6)
      throw new HostPatternError(
        'brackets hold no IPv6 address',
        'brackets are only for IPv6, e.g. "[2001:db8::1]:443"',
      );
    const rest = raw.slice(close + 1);
    if (rest === '') return { hostPart: inner, port: null };
    if (!rest.startsWith(':')) throw new HostPatternError('unexpected text after "]"', 'write "[addr]:port"');
    return { hostPart: inner, port: parsePort(rest.slice(1)) };
  }
  if (isIP(raw) === 6) return { hostPart: raw, port: null };
  const colon = raw.lastIndexOf(':');
  if (colon < 0) return { hostPart: raw, port: null };
  const hostPart = raw.slice(0, colon);
  if (hostPart.includes(':')) {
    throw new HostPatternError(
      'too many ":"',
      'write "host:port"; put IPv6 addresses in brackets, e.g. "[2001:db8::1]:443"',
    );
  }
  return { hostPart, port: parsePort(raw.slice(colon + 1)) };
}

function parsePort(text: string): number {
  if (!/^[0-9]+$/.test(text))
    throw new HostPatternError(
      `port ${JSON.stringify(text)} is not a number`,
      'write a port from 1 to 65535, e.g. "example.com:443"',
    );
  const port = Number(text);
  if (port < 1 || port > 65535)
    throw new HostPatternError(`port ${text} is out of range`, 'use a port from 1 to 65535');
  return port;
}

function validateHostName(host: string): void {
  if (host === '') throw new HostPatternError('empty host', 'write a host name such as "github.com"');
  if (host.length > MAX_HOST)
    throw new HostPatternError(`host name longer than ${MAX_HOST} characters`, 'shorten the host name');
  for (const label of host.split('.')) {
    if (label === '') throw new HostPatternError('empty label (".." or a leading ".")', 'remove the extra dot');
    if (label.length > MAX_LABEL)
      throw new HostPatternError(
        `label "${label.slice(0, 12)}..." is longer than ${MAX_LABEL} characters`,
        'DNS labels are at most 63 characters',
      );
    if (!LABEL.test(label)) {
      throw new HostPatternError(
        `label ${JSON.stringify(label)} has invalid characters`,
        'use letters, digits and "-" (not at either end of a label)',
      );
    }
  }
}

/** Normalises a request's host for matching: lowercase, no trailing dot, no IPv6 brackets. */
export function normalizeHost(host: string): string {
  let h = host.trim().toLowerCase();
  if (h.startsWith('[') && h.endsWith(']')) h = h.slice(1, -1);
  if (h.endsWith('.')) h = h.slice(0, -1);
  return h;
}

/**
 * Whether a request to host:port is allowed by one pattern. A pattern without
 * a port means the scheme's default: 443 for CONNECT (TLS), 80 for plain HTTP.
 * `*.d` matches strict subdomains of d, never d itself.
 */
export function patternMatches(p: HostPattern, host: string, port: number, mode: 'connect' | 'http'): boolean {
  const wantPort = p.port ?? (mode === 'connect' ? 443 : 80);
  if (port !== wantPort) return false;
  const h = normalizeHost(host);
  if (p.kind === 'exact') return h === p.host;
  return h.length > p.host.length + 1 && h.endsWith(`.${p.host}`);
}
