/**
 * Which allowed credential-route calls become their own decision line. An agent calls its model
 * through the route many times a minute, each call the same decision about the same route; one line
 * each would make the route's calls most of a busy bottle's log. So the first call of a route and
 * method is written, and after it at most one per window; every call, written or not, is counted in
 * the traffic summary (traffic-ledger.ts). Refusals and audits are never thinned: only `allowed`
 * decisions of credential routes come here.
 */

/** How long a written route call stands for the same calls after it. */
export const ROUTE_CALL_WINDOW_MS = 10 * 60_000;
/** Routes and methods remembered; past it every call is written, so forgetting never hides one. */
export const ROUTE_CALL_MAX_KEYS = 256;

export class RepeatedRouteCalls {
  private readonly lastWritten = new Map<string, number>();

  constructor(
    private readonly now: () => number = Date.now,
    private readonly windowMs = ROUTE_CALL_WINDOW_MS,
    private readonly maxKeys = ROUTE_CALL_MAX_KEYS,
  ) {}

  /** True when this call is to be written as its own line (and is then remembered as written). */
  shouldWrite(target: { host: string | null; port: number | null; method: string | null }): boolean {
    const key = `${target.host ?? ''}\0${target.port ?? ''}\0${target.method ?? ''}`;
    const now = this.now();
    const last = this.lastWritten.get(key);
    if (last !== undefined && now - last < this.windowMs) return false;
    if (last === undefined && this.lastWritten.size >= this.maxKeys) this.forgetExpired(now);
    if (last !== undefined || this.lastWritten.size < this.maxKeys) this.lastWritten.set(key, now);
    return true;
  }

  private forgetExpired(now: number): void {
    for (const [key, at] of this.lastWritten) if (now - at >= this.windowMs) this.lastWritten.delete(key);
  }
}
