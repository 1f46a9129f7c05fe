import { signalForExitCode } from '../shared/exit-signal.js';

/**
 * Upcasters turn event data stored with an old schema version into the next
 * version, one step at a time, so the log is never rewritten and the machine
 * only sees current shapes. Register one function per (type, fromVersion);
 * reading chains them up to CURRENT_VERSION. Upcasters are pure and must not
 * fail on any record that was valid when it was written.
 */
export type Upcaster = (data: Record<string, unknown>) => Record<string, unknown>;

const registry = new Map<string, Upcaster>();
const keyOf = (type: string, fromVersion: number) => `${type}@${fromVersion}`;

export function registerUpcaster(type: string, fromVersion: number, upcast: Upcaster): void {
  const key = keyOf(type, fromVersion);
  if (registry.has(key)) throw new Error(`an upcaster for ${type} v${fromVersion} is already registered`);
  registry.set(key, upcast);
}

export function upcasterFor(type: string, fromVersion: number): Upcaster | undefined {
  return registry.get(keyOf(type, fromVersion));
}

export class MissingUpcasterError extends Error {
  constructor(
    readonly type: string,
    readonly fromVersion: number,
  ) {
    super(`no upcaster registered for ${type} v${fromVersion} -> v${fromVersion + 1}`);
    this.name = 'MissingUpcasterError';
  }
}

/** Applies the registered chain fromVersion -> toVersion. */
export function upcastData(type: string, fromVersion: number, toVersion: number, data: unknown): unknown {
  let current = data;
  for (let v = fromVersion; v < toVersion; v++) {
    const step = upcasterFor(type, v);
    if (!step) throw new MissingUpcasterError(type, v);
    // A malformed old record is left for the validator to reject with a clear message.
    if (typeof current !== 'object' || current === null) return current;
    current = step(current as Record<string, unknown>);
  }
  return current;
}

// --- registered upcasters ----------------------------------------------------

export { signalForExitCode } from '../shared/exit-signal.js';

// agent.exited v1 stored only { exit_code }; v2 is { code, signal }.
registerUpcaster('agent.exited', 1, (data) => {
  const code = data.exit_code;
  if (typeof code !== 'number') return data;
  return { code, signal: signalForExitCode(code) };
});

// capability.requested v1 had no queue: a request made while another was pending was ignored.
registerUpcaster('capability.requested', 1, (data) => ({ ...data, queue_if_pending: false }));

// gateway.started v1 came from the launch whose one gateway effect also started pipelock (when the plan used
// it) and whose agent start waited for the gateway's ready line. That is several current events in one record,
// so it is marked rather than reshaped, and the machine reads the mark (src/machines/legacy-guards.ts).
registerUpcaster('gateway.started', 1, (data) => ({ ...data, legacy_launch: true }));

// capability.approved / capability.denied v1 were decided before the agent could learn a decision: a v1
// egress approval ended the bottle for a rebuild, and a v1 denial asked for nothing to be done. No current
// decision means that, and whether the request was egress is in an earlier event, so these are marked too.
registerUpcaster('capability.approved', 1, (data) => ({ ...data, legacy_decision: true }));
registerUpcaster('capability.denied', 1, (data) => ({ ...data, legacy_decision: true }));
