import { parseHostPattern } from '../../shared/host-pattern.js';
import { canarySecretId, type GatewayConfig, type GatewaySecrets } from '../config.js';
import { credentialHeader, routeUpstream } from '../credential-proxy.js';
import { canonicalHost } from '../egress-policy.js';
import { SecretScanner, type InjectedHeader } from './secret-scanner.js';

/** The scanner for this gateway's files: every secret it holds, the bottle's canaries, its dlp mode. */
export function scannerForGateway(config: GatewayConfig, secrets: GatewaySecrets): SecretScanner {
  const canaryIds = new Set(config.dlp.canaries.map(canarySecretId));
  const held = Object.fromEntries(Object.entries(secrets).filter(([id]) => !canaryIds.has(id)));
  const canaries = Object.fromEntries(config.dlp.canaries.map((kind) => [kind, secrets[canarySecretId(kind)]]));
  const injected: InjectedHeader[] = config.routes.map((route) => {
    const [header, value] = credentialHeader(route, secrets[route.id]);
    return { routeHost: canonicalHost(routeUpstream(route).hostname), header, value };
  });
  const wildcardDomains = config.allow
    .map((entry) => parseHostPattern(entry))
    .filter((pattern) => pattern.kind === 'subdomains')
    .map((pattern) => pattern.host);
  return new SecretScanner({ secrets: held, canaries, mode: config.dlp.mode, wildcardDomains, injected });
}
