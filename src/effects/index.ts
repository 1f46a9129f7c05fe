import { startAgent, stopAgent } from './agent.js';
import { answerCapability } from './answer.js';
import { applyCapability } from './capability.js';
import { awaitGatewayReady, startGateway } from './gateway.js';
import { buildImage } from './image.js';
import { createNetworks } from './networks.js';
import { startNetwatch } from './netwatch/launch.js';
import { startPipelock } from './pipelock/launch.js';
import { prepare } from './prepare.js';
import { snapshot } from './snapshot.js';
import { cleanup, preserve, teardownFailed } from './teardown.js';
import type { EffectDeps, EffectHandlers } from './types.js';
import { watchAgent } from './watch.js';

/**
 * The effect table: one handler per kind of the machine's effect vocabulary
 * (src/machines/effects.ts), each idempotent and each returning the events
 * that record its outcome.
 */
export function effectHandlers(deps: EffectDeps): EffectHandlers {
  return {
    prepare_state: prepare,
    build_image: buildImage(deps),
    create_networks: createNetworks(deps),
    start_gateway: startGateway(deps),
    await_gateway_ready: awaitGatewayReady(deps),
    start_pipelock: startPipelock(deps),
    start_agent: startAgent(deps),
    start_netwatch: startNetwatch(deps),
    watch_agent: watchAgent(deps),
    stop_agent: stopAgent(deps),
    snapshot_transcript: snapshot(deps),
    preserve: preserve(deps),
    cleanup: cleanup(deps),
    apply_capability: applyCapability(deps),
    answer_capability: answerCapability(deps),
    teardown_failed: teardownFailed(deps),
  };
}
