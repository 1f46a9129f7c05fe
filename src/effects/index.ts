import { startAgent } from './start-agent.js';
import { stopAgent } from './stop-agent.js';
import { answerCapability } from './answer-capability.js';
import { applyCapability } from './apply-capability.js';
import { applyBudget } from './apply-budget.js';
import { awaitGatewayReady } from './await-gateway-ready.js';
import { startGateway } from './start-gateway.js';
import { buildImage } from './build-image.js';
import { createNetworks } from './create-networks.js';
import { startNetwatch } from './start-netwatch.js';
import { startPipelock } from './start-pipelock.js';
import { prepareState } from './prepare-state.js';
import { snapshotTranscript } from './snapshot-transcript.js';
import { cleanup } from './cleanup.js';
import { discard } from './discard.js';
import { preserve } from './preserve.js';
import { teardownFailed } from './teardown-failed.js';
import { publishPorts } from './publish-ports.js';
import { unpublishPort } from './unpublish-port.js';
import type { EffectDeps, EffectHandlers } from './types.js';
import { watchAgent } from './watch-agent.js';
import { watchSidecars } from './watch-sidecars.js';

/**
 * The effect table: one handler per kind of the machine's effect vocabulary
 * (src/machines/effects.ts), each idempotent and each returning the events
 * that record its outcome.
 */
export function effectHandlers(deps: EffectDeps): EffectHandlers {
  return {
    prepare_state: prepareState,
    build_image: buildImage(deps),
    create_networks: createNetworks(deps),
    start_gateway: startGateway(deps),
    await_gateway_ready: awaitGatewayReady(deps),
    start_pipelock: startPipelock(deps),
    start_agent: startAgent(deps),
    start_netwatch: startNetwatch(deps),
    watch_agent: watchAgent(deps),
    watch_sidecars: watchSidecars(deps),
    stop_agent: stopAgent(deps),
    snapshot_transcript: snapshotTranscript(deps),
    preserve: preserve(deps),
    cleanup: cleanup(deps),
    apply_capability: applyCapability(deps),
    answer_capability: answerCapability(deps),
    teardown_failed: teardownFailed(deps),
    apply_budget: applyBudget(deps),
    discard: discard(deps),
    publish_ports: publishPorts(deps),
    unpublish_port: unpublishPort(deps),
  };
}
