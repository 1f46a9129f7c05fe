import type Docker from 'dockerode';
import { GATEWAY_BUDGET_PATH, GATEWAY_FILES_DIR, isBudgetSetLineFor, type BudgetFile } from '../gateway/protocol.js';
import { statusOf } from './docker/client.js';
import { readGatewayReadyLine, waitForReadyLine } from './docker/logs.js';
import { putEntries } from './docker/provision.js';
import type { EffectDeps, EffectHandler } from './types.js';

/** How long the gateway may take to print that it enforces the new limit. */
const BUDGET_SET_TIMEOUT_MS = 30_000;

async function isRunning(container: Docker.Container): Promise<boolean> {
  try {
    return (await container.inspect()).State.Running;
  } catch (err) {
    if (statusOf(err) === 404) return false;
    throw err;
  }
}

/**
 * apply_budget: tells the running gateway the raised limit the way decisions are told (answer-capability.ts):
 * the worker writes it into the gateway's root-owned files folder and sends SIGHUP, then waits for the
 * gateway's `budget_set` line. The agent's next Messages API call is then let through. Rewriting the file
 * is harmless, so a retried effect tells it again; with no running gateway there is nobody to tell.
 */
export const applyBudget =
  ({ docker }: EffectDeps): EffectHandler<'apply_budget'> =>
  async (req, ctx) => {
    const { limit } = req.params;
    const gateway = docker.getContainer(ctx.plan.containers.gateway);
    const told = async (): Promise<boolean> => {
      if (!(await isRunning(gateway))) return false;
      if (!(await readGatewayReadyLine(gateway))?.takes_decisions) return false;
      const file: BudgetFile = { limit };
      await putEntries(
        gateway,
        [{ type: 'file', path: GATEWAY_BUDGET_PATH, mode: 0o444, uid: 0, gid: 0, content: JSON.stringify(file) }],
        GATEWAY_FILES_DIR,
      );
      try {
        await gateway.kill({ signal: 'SIGHUP' });
        await waitForReadyLine(gateway, 'the gateway taking in the budget', isBudgetSetLineFor(limit), {
          timeoutMs: BUDGET_SET_TIMEOUT_MS,
          signal: ctx.signal,
        });
      } catch (err) {
        if (!(await isRunning(gateway))) return false;
        throw err;
      }
      return true;
    };
    return [{ type: 'budget.applied', data: { limit, live: await told() } }];
  };
