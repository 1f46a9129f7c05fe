import { randomBytes } from 'node:crypto';
import { canarySecretId, GatewayConfigSchema, type GatewayConfigInput } from '../gateway/config.js';
import {
  GATEWAY_CONFIG_PATH,
  GATEWAY_CREDENTIAL_PORT,
  GATEWAY_DNS_PORT,
  GATEWAY_FILES_DIR,
  GATEWAY_NETWATCH_TOKEN_PATH,
  GATEWAY_PROXY_PORT,
  GATEWAY_SECRETS_PATH,
  GATEWAY_SSH_AGENT_PORT,
  GATEWAY_UPSTREAM_CA_PATH,
} from '../gateway/protocol.js';
import { NETWATCH_REPORT_PORT } from '../netwatch/protocol.js';
import { hasSsh, sshKeyId } from '../plan/ssh-config.js';
import type { BottlePlan } from '../plan/schema.js';
import { routeId } from '../shared/names.js';
import {
  ensureConnected,
  ensureContainer,
  gatewayContainerSpec,
  GATEWAY_UID,
  startContainer,
  startedAt,
} from './docker/containers.js';
import { putEntries, type ArchiveEntry } from './docker/provision.js';
import { classifyDockerErrors, requireNetwork } from './errors.js';
import { SealedSecretsError } from '../shared/sealed-secrets.js';
import { PermanentEffectError, type EffectDeps, type EffectHandler, type LaunchSecrets } from './types.js';

/** What the machine says of the budget at launch: its unit, limit (raises included) and what earlier runs spent. */
export interface LaunchBudget {
  unit: 'tokens' | 'usd';
  limit: number;
  spent: number;
}

/** The gateway's config: the allowlist, credential routes by id, and pinned names resolved to IPs. */
export function gatewayConfigFor(plan: BottlePlan, budget?: LaunchBudget): GatewayConfigInput {
  const prices = plan.limits.budget?.prices;
  return {
    identity: plan.identity,
    proxy_port: GATEWAY_PROXY_PORT,
    credential_port: GATEWAY_CREDENTIAL_PORT,
    dns_port: GATEWAY_DNS_PORT,
    netwatch_port: plan.containers.netwatch ? NETWATCH_REPORT_PORT : null,
    allow: plan.hosts,
    entries: plan.egress_entries ?? [],
    // host-gateway stays as written: Docker resolves it in the gateway's /etc/hosts, where the gateway reads it.
    extra_hosts: plan.extra_hosts,
    routes: plan.credentials.map((route, index) => ({
      id: routeId(index),
      ...(route.role ? { role: route.role } : {}),
      ...(route.host ? { host: route.host } : {}),
      ...(route.upstream ? { upstream: route.upstream } : {}),
      auth: route.auth,
      ...(route.header ? { header: route.header } : {}),
    })),
    dlp: { mode: plan.egress?.dlp ?? 'block', canaries: plan.canaries ? Object.keys(plan.canaries) : [] },
    ssh_agent: hasSsh(plan) ? { port: GATEWAY_SSH_AGENT_PORT, keys: plan.ssh.map((_, i) => sshKeyId(i)) } : null,
    ...(budget ? { budget: { ...budget, ...(prices ? { prices } : {}) } } : {}),
  };
}

/** The config and secrets files, written into the created gateway's root-owned files folder. */
async function gatewayFiles(
  plan: BottlePlan,
  firstAttempt: boolean,
  launchSecrets: LaunchSecrets,
  budget: LaunchBudget | undefined,
  upstreamCa: string | undefined,
): Promise<ArchiveEntry[]> {
  const config = GatewayConfigSchema.safeParse(gatewayConfigFor(plan, budget));
  if (!config.success) {
    const issues = config.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    throw new PermanentEffectError(`gateway configuration is invalid: ${issues}`);
  }
  const files: ArchiveEntry[] = [
    { type: 'file', path: GATEWAY_CONFIG_PATH, mode: 0o444, uid: 0, gid: 0, content: JSON.stringify(config.data) },
  ];
  if (upstreamCa !== undefined)
    files.push({ type: 'file', path: GATEWAY_UPSTREAM_CA_PATH, mode: 0o444, uid: 0, gid: 0, content: upstreamCa });
  // A new token for each gateway container; start_netwatch reads it back from here.
  if (config.data.netwatch_port !== null) {
    const content = randomBytes(32).toString('hex');
    files.push({
      type: 'file',
      path: GATEWAY_NETWATCH_TOKEN_PATH,
      mode: 0o400,
      uid: GATEWAY_UID,
      gid: GATEWAY_UID,
      content,
    });
  }
  const secrets = await openLaunchSecrets(launchSecrets);
  if (!secrets && firstAttempt && (plan.credentials.length > 0 || hasSsh(plan))) {
    throw new PermanentEffectError(
      'the credential secrets for this launch are gone (already used by an earlier gateway); ' +
        'start or resume the bottle again',
    );
  }
  // A retry that finds the secrets already handed over rewrites only the config.
  if (secrets || firstAttempt) {
    const content = JSON.stringify({ ...secrets, ...canarySecrets(plan) });
    files.push({ type: 'file', path: GATEWAY_SECRETS_PATH, mode: 0o400, uid: GATEWAY_UID, gid: GATEWAY_UID, content });
  }
  return files;
}

/** The launch's canaries as the gateway reads them: decoys, so they come from the plan, not the sealed secrets. */
function canarySecrets(plan: BottlePlan): Record<string, string> {
  return Object.fromEntries(Object.entries(plan.canaries ?? {}).map(([kind, value]) => [canarySecretId(kind), value]));
}

/** A blob this host cannot open will not open on a retry either. */
async function openLaunchSecrets(launchSecrets: LaunchSecrets): Promise<Record<string, string> | undefined> {
  try {
    return await launchSecrets.open();
  } catch (err) {
    if (err instanceof SealedSecretsError) throw new PermanentEffectError(err.message);
    throw err;
  }
}

/** start_gateway: the gateway container, on the egress network and at its fixed internal address, started. */
export const startGateway =
  ({ docker, upstreamCa }: EffectDeps): EffectHandler<'start_gateway'> =>
  async (req, ctx) => {
    const { plan } = ctx;
    const network = requireNetwork(req.params.network);
    const gateway = await classifyDockerErrors('creating the gateway', () =>
      ensureContainer(docker, gatewayContainerSpec(plan, { network, upstreamCa: upstreamCa !== undefined })),
    );
    await ensureConnected(docker, gateway.id, network.internal.name, network.addresses.gateway);
    if (gateway.status === 'created') {
      await putEntries(
        gateway.container,
        await gatewayFiles(plan, gateway.created, ctx.secrets, req.params.budget, upstreamCa),
        GATEWAY_FILES_DIR,
      );
      await ctx.secrets.discard();
      await classifyDockerErrors('starting the gateway', () => startContainer(gateway.container));
    }
    const started_at = await startedAt(gateway.container);
    const data = {
      container: plan.containers.gateway,
      ip: network.addresses.gateway,
      started_at,
      legacy_launch: false,
    };
    return [{ type: 'gateway.started', data }];
  };
