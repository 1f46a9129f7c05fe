import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CapabilityKind } from '../shared/capability.js';
import { visibleText } from '../shared/visible-text.js';
import { decisionFileName, DecisionFileSchema, type DecisionFile, type GatewayLine, type Grant } from './protocol.js';

/** What the gateway keeps of an accepted request: what it asks for, to answer its status. */
export interface IssuedRequest {
  kind: CapabilityKind;
  host?: string;
  port?: number;
  methods?: string[];
  paths?: string[];
}

/**
 * The requests this gateway issued and the decisions the worker has written
 * for them. Reading the decisions folder is the only way a decision arrives:
 * an approved egress entry is added to the allowlist (a method/path grant to
 * its entry's rules) before anyone is told.
 */
export class CapabilityBook {
  private readonly issued = new Map<string, IssuedRequest>();
  private readonly decided = new Map<string, DecisionFile>();
  private readonly waiters = new Map<string, Set<() => void>>();
  private readonly toldIds = new Set<string>();

  constructor(
    private readonly dir: string | undefined,
    private readonly onAllow: (entry: string, grant: Grant | undefined) => void,
    private readonly emit: (line: GatewayLine) => void,
    private readonly log: (message: string) => void,
  ) {}

  issue(requestId: string, request: IssuedRequest): void {
    this.issued.set(requestId, request);
  }

  request(requestId: string): IssuedRequest | undefined {
    return this.issued.get(requestId);
  }

  decision(requestId: string): DecisionFile | undefined {
    return this.decided.get(requestId);
  }

  /** Records that the agent has been sent the decision (said once per request). */
  told(requestId: string): void {
    if (!this.decided.has(requestId) || this.toldIds.has(requestId)) return;
    this.toldIds.add(requestId);
    this.emit({ t: 'told', request_id: requestId });
  }

  /** Takes in decision files not seen yet; a malformed one is skipped (and said so) until it is rewritten. */
  reload(): void {
    if (this.dir === undefined) return;
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    for (const name of names.sort()) {
      if (!name.endsWith('.json') || this.decided.has(name.slice(0, -'.json'.length))) continue;
      const decision = this.readDecision(name);
      if (decision) this.take(decision);
    }
  }

  /** Resolves when `requestId` is decided or `ms` has passed; `cancel` ends the wait early. */
  waitFor(requestId: string, ms: number, cancel: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const waiters = this.waiters.get(requestId) ?? new Set<() => void>();
      this.waiters.set(requestId, waiters);
      const done = () => {
        clearTimeout(timer);
        cancel.removeEventListener('abort', done);
        waiters.delete(done);
        if (waiters.size === 0) this.waiters.delete(requestId);
        resolve();
      };
      const timer = setTimeout(done, ms);
      cancel.addEventListener('abort', done, { once: true });
      waiters.add(done);
    });
  }

  private readDecision(name: string): DecisionFile | undefined {
    try {
      const parsed = DecisionFileSchema.safeParse(JSON.parse(readFileSync(join(this.dir!, name), 'utf8')));
      if (parsed.success && decisionFileName(parsed.data.request_id) === name) return parsed.data;
    } catch {
      // Reported below, like a file of the wrong shape.
    }
    this.log(`decision file ${visibleText(name)} is malformed; ignored`);
    return undefined;
  }

  private take(decision: DecisionFile): void {
    if (decision.decision === 'approved' && decision.applies === 'live' && decision.allow !== null) {
      try {
        this.onAllow(decision.allow, decision.grant);
      } catch (err) {
        this.log(`decision ${decision.request_id}: allowlist entry refused: ${(err as Error).message}`);
        return;
      }
    }
    this.decided.set(decision.request_id, decision);
    this.emit({ t: 'answered', request_id: decision.request_id, decision: decision.decision });
    for (const wake of [...(this.waiters.get(decision.request_id) ?? [])]) wake();
  }
}
