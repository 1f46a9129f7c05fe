import type Docker from 'dockerode';
import { GATEWAY_CREDENTIAL_PORT } from '../../src/gateway/protocol.js';
import { resourceNames } from '../../src/shared/names.js';
import { execIn } from './docker.js';

/**
 * A capability request sent from inside the bottle's agent container, as an agent sends it: to the
 * gateway whose address HTTPS_PROXY gives, on its credential port. Returns curl's exit and output.
 */
export function requestCapability(
  docker: Docker,
  identity: string,
  body: Record<string, unknown>,
): Promise<{ code: number; output: string }> {
  const endpoint = `http://$gw:${GATEWAY_CREDENTIAL_PORT}/_bottle/capability`;
  const script = `gw=\${HTTPS_PROXY#http://}; gw=\${gw%:*}; curl -s -X POST "${endpoint}" -d "$BODY"`;
  return execIn(docker.getContainer(resourceNames(identity).agentContainer), ['sh', '-c', script], {
    user: 'node',
    env: [`BODY=${JSON.stringify(body)}`],
  });
}
