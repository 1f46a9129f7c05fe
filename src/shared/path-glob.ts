/**
 * The text of an allowlist entry's method and path rules, checked the same
 * way by the manifest and by the gateway's config (the gateway's
 * path-rules.ts gives them their meaning).
 */

/** An HTTP method token (RFC 9110 5.6.2). */
export const HTTP_METHOD = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** Why `glob` is not a path glob (`/org/**`, `!/**` + `/git-receive-pack`), or null when it is one. */
export function pathGlobProblem(glob: string): string | null {
  const body = glob.startsWith('!') ? glob.slice(1) : glob;
  if (!body.startsWith('/')) return `path glob ${JSON.stringify(glob)} must start with "/" (or "!/" to exclude)`;
  if (/[^\x21-\x7e]/.test(body)) return `path glob ${JSON.stringify(glob)} has a space, control or non-ASCII character`;
  if (/[?#\\]/.test(body)) return `path glob ${JSON.stringify(glob)} must not contain "?", "#" or "\\"`;
  if (body.includes('***')) return `path glob ${JSON.stringify(glob)} has "***"; use "**"`;
  if (/%(2f|5c|25|3b|00)/i.test(body) || /%(?![0-9a-f]{2})/i.test(body))
    return `path glob ${JSON.stringify(glob)} has an escape no canonical path contains (%2F, %5C, %25, %3B, %00)`;
  return null;
}
