/**
 * Whether a request path tries to climb out of the prefix the gateway maps it
 * under (a route's upstream path, or `/_host/<host>/`). Upstreams and
 * intermediaries normalise dot segments and encoded forms differently, so the
 * gateway refuses anything ambiguous instead of normalising it itself.
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
  if (/%(2e|2f|5c|25)/i.test(decoded)) return true;
  return decoded.split('/').some((segment) => segment === '..' || segment === '.');
}
