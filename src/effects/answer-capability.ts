import type Docker from 'dockerode';
import {
  decisionFileName,
  GATEWAY_DECISIONS_DIR,
  GATEWAY_FILES_DIR,
  isAnsweredLineFor,
  isToldLineFor,
  type DecisionFile,
} from '../gateway/protocol.js';
import type { PendingCapability } from '../machines/context.js';
import type { BottlePlan } from '../plan/schema.js';
import { egressAllowEntry, grantScope } from '../shared/capability.js';
import { statusOf } from './docker/client.js';
import { readGatewayReadyLine, waitForReadyLine } from './docker/logs.js';
import { putEntries } from './docker/provision.js';
import { PermanentEffectError, type EffectDeps, type EffectHandler } from './types.js';

/**
 * How a decision reaches the agent: the worker writes it as one file into the
 * running gateway's decisions folder (the root-owned volume its config came
 * through, so the gateway, which talks to the agent, can read decisions but
 * never forge one) and sends the gateway SIGHUP. The gateway takes the file
 * in (an approved egress entry joins its allowlist), prints an `answered` line
 * and answers the agent's waiting `GET /_bottle/capability/<id>`. Nothing
 * polls: the gateway opens no port toward the worker, and the agent's status
 * request rereads the folder too, so a lost signal delays nothing it asks.
 */

/** How long the gateway may take to print that it took a decision in. */
const ANSWER_TIMEOUT_MS = 30_000;

/**
 * Writes the decision into the bottle's gateway and waits until the gateway has taken it in; false when
 * there is no running gateway to tell (the agent has ended). Rewriting the same file is harmless, so a
 * retried effect simply tells it again.
 */
export async function tellGateway(
  docker: Docker,
  plan: BottlePlan,
  decision: DecisionFile,
  signal?: AbortSignal,
): Promise<boolean> {
  const name = decisionFileName(decision.request_id);
  if (!name)
    throw new PermanentEffectError(`capability request id ${JSON.stringify(decision.request_id)} cannot be told`);
  const gateway = docker.getContainer(plan.containers.gateway);
  if (!(await isRunning(gateway))) return false;
  // A gateway from before decisions were told would die of the signal; its agent never learns the answer.
  if (!(await readGatewayReadyLine(gateway))?.takes_decisions) return false;
  const owner = { uid: 0, gid: 0 };
  await putEntries(
    gateway,
    [
      { type: 'directory', path: GATEWAY_DECISIONS_DIR, mode: 0o755, ...owner },
      {
        type: 'file',
        path: `${GATEWAY_DECISIONS_DIR}/${name}`,
        mode: 0o444,
        ...owner,
        content: JSON.stringify(decision),
      },
    ],
    GATEWAY_FILES_DIR,
  );
  try {
    await gateway.kill({ signal: 'SIGHUP' });
    await waitForReadyLine(gateway, 'the gateway taking in the decision', isAnsweredLineFor(decision.request_id), {
      timeoutMs: ANSWER_TIMEOUT_MS,
      signal,
    });
  } catch (err) {
    // The gateway stopped meanwhile: nobody is left to tell.
    if (!(await isRunning(gateway))) return false;
    throw err;
  }
  return true;
}

/** How long a rebuild waits for a waiting `bottle-request` to be sent its answer before it stops the agent. */
const TOLD_TIMEOUT_MS = 5_000;

/**
 * Waits, briefly, until the gateway has sent the agent the decision: an agent that is waiting for it
 * hears it before its bottle is stopped for a rebuild. An agent that is not asking is not waited for.
 */
export async function awaitAgentTold(docker: Docker, plan: BottlePlan, requestId: string, signal?: AbortSignal) {
  const gateway = docker.getContainer(plan.containers.gateway);
  const what = 'the agent hearing the decision';
  await waitForReadyLine(gateway, what, isToldLineFor(requestId), { timeoutMs: TOLD_TIMEOUT_MS, signal }).catch(
    () => undefined,
  );
}

async function isRunning(container: Docker.Container): Promise<boolean> {
  try {
    return (await container.inspect()).State.Running;
  } catch (err) {
    if (statusOf(err) === 404) return false;
    throw err;
  }
}

/** The decision file for a request the operator decided. */
export function decisionFile(
  request: PendingCapability,
  decision: 'approved' | 'denied',
  reason: string | null,
): DecisionFile {
  if (decision === 'denied') return { request_id: request.request_id, decision, reason, applies: null, allow: null };
  const live = request.kind === 'egress';
  const allow = live ? (egressAllowEntry(request) ?? null) : null;
  const file: DecisionFile = {
    request_id: request.request_id,
    decision,
    reason: null,
    applies: live ? 'live' : 'rebuild',
    allow,
  };
  const scope = grantScope(request);
  if (live && request.host && scope) file.grant = { host: request.host, port: request.port ?? 443, ...scope };
  return file;
}

/**
 * answer_capability: tells the running gateway the operator's decision; an
 * approved egress entry joins its allowlist (a method/path grant widens its
 * entry's rules). Later resumes launch with the
 * entry because the approval is in the event log (src/cli/resume-facts.ts).
 */
export const answerCapability =
  ({ docker }: EffectDeps): EffectHandler<'answer_capability'> =>
  async (req, ctx) => {
    const { request, decision, reason } = req.params;
    const file = decisionFile(request, decision, reason);
    if (decision === 'denied') {
      const delivered = await tellGateway(docker, ctx.plan, file, ctx.signal);
      return [{ type: 'capability.answered', data: { request_id: request.request_id, decision, delivered } }];
    }
    if (request.kind !== 'egress' || file.allow === null) {
      throw new PermanentEffectError(`capability request ${request.request_id} is not an egress request with a host`);
    }
    const live = await tellGateway(docker, ctx.plan, file, ctx.signal);
    const scope = grantScope(request) ?? {};
    return [
      { type: 'egress.granted', data: { request_id: request.request_id, entry: file.allow, live, ...scope } },
      { type: 'capability.answered', data: { request_id: request.request_id, decision, delivered: live } },
    ];
  };
