import { readFileSync, statSync } from 'node:fs';
import type Docker from 'dockerode';
import { GatewayConfigSchema, type GatewayConfigInput } from '../../gateway/config.js';
import {
  GATEWAY_CONFIG_PATH,
  GATEWAY_CREDENTIAL_PORT,
  GATEWAY_FILES_DIR,
  GATEWAY_LISTEN_ADDRESS_ENV,
  GATEWAY_PROXY_PORT,
  type DecisionLine,
  type EgressLine,
} from '../../gateway/protocol.js';
import type { ImageSource } from '../../images/build-context.js';
import { bottleLabels } from '../../shared/names.js';
import { subnetAddresses, subnetPool } from '../../shared/subnet-pool.js';
import { PermanentEffectError } from '../types.js';
import { imageExists, statusOf } from './client.js';
import { ensureConnected, gatewayExtraHosts, GATEWAY_UID, resourceLimits, SIDECAR_LIMITS } from './containers.js';
import { drainDecisionLines, waitForGatewayReady } from './logs.js';
import { ensureNetwork } from './networks.js';
import { putEntries, type ArchiveEntry } from './provision.js';

/**
 * A build's one way out. Docker's default build network lets a Dockerfile's RUN connect anywhere, unrecorded;
 * instead each build that has to run runs its RUN steps on an internal network of its own (no route off the
 * bridge) whose only other member is a gateway container, also on an egress network: the gateway program with
 * the build allowlist, no credential routes and no DNS for the build. RUN steps reach it through the standard
 * proxy variables (Docker passes HTTP_PROXY & co. as predefined build args; apt, curl and pip read them); its
 * decision lines are handed to `onDecision`. Networks and container are removed when the build ends, however.
 */
export interface BuildEgress {
  /** The bottle the build is for: names and labels its build resources (so bottle clean-up finds leftovers). */
  identity: string;
  agent: string;
  allow: string[];
  extraHosts: Record<string, string>;
  /** The gateway image to run when it exists; else the gateway program is copied onto that image's base. */
  gatewayImage: string;
  gatewaySource: () => ImageSource;
  onDecision: (line: EgressLine) => void | Promise<void>;
}

/** What the build itself is given: the network its RUN steps join and the proxy variables. */
export interface BuildRoute {
  networkmode: string;
  buildargs: Record<string, string>;
}

const READY_TIMEOUT_MS = 30_000;
const OPT = '/opt/gateway';

export function buildResourceNames(identity: string) {
  return {
    internal: `cb-${identity}-build-internal`,
    egress: `cb-${identity}-build-egress`,
    gateway: `cb-${identity}-build-gateway`,
  };
}

/** The proxy variables, in both spellings: tools differ in which they read. */
export function proxyBuildArgs(proxy: string): Record<string, string> {
  return { HTTP_PROXY: proxy, HTTPS_PROXY: proxy, http_proxy: proxy, https_proxy: proxy };
}

export function buildGatewayConfig(egress: Pick<BuildEgress, 'identity' | 'allow' | 'extraHosts'>): GatewayConfigInput {
  return {
    identity: `${egress.identity}-build`,
    proxy_port: GATEWAY_PROXY_PORT,
    credential_port: GATEWAY_CREDENTIAL_PORT,
    dns_port: null,
    netwatch_port: null,
    allow: egress.allow,
    extra_hosts: egress.extraHosts,
    routes: [],
    ssh_agent: null,
  };
}

/** Runs `build` with its RUN steps behind a build gateway; everything made for it is gone afterwards. */
export async function withBuildGateway<T>(
  docker: Docker,
  egress: BuildEgress,
  build: (route: BuildRoute) => Promise<T>,
): Promise<T> {
  const names = buildResourceNames(egress.identity);
  // A build interrupted by a worker crash left these behind; a retried effect starts clean.
  await removeBuildResources(docker, names);
  let gateway: Docker.Container | undefined;
  try {
    const pool = subnetPool();
    const [internal, outside] = await Promise.all([
      ensureNetwork(docker, {
        name: names.internal,
        internal: true,
        labels: bottleLabels(egress.identity, egress.agent, 'build-network'),
        pool,
      }),
      ensureNetwork(docker, {
        name: names.egress,
        internal: false,
        labels: bottleLabels(egress.identity, egress.agent, 'build-network'),
        pool,
      }),
    ]);
    const address = subnetAddresses(internal.subnet).gateway;
    gateway = await createBuildGateway(docker, egress, { name: names.gateway, network: outside.name, address });
    await ensureConnected(docker, gateway.id, internal.name, address);
    await gateway.start();
    await waitForGatewayReady(gateway, { timeoutMs: READY_TIMEOUT_MS });
    return await build({
      networkmode: internal.name,
      buildargs: proxyBuildArgs(`http://${address}:${GATEWAY_PROXY_PORT}`),
    });
  } finally {
    try {
      if (gateway) await drainDecisionLines(gateway, { sinceN: 0, onLine: (l) => recordEgress(egress, l) });
    } finally {
      await removeBuildResources(docker, names);
    }
  }
}

/** A build gateway takes no capability requests (it has no agent); only its egress decisions are recorded. */
function recordEgress(egress: BuildEgress, line: DecisionLine): void | Promise<void> {
  if (line.t === 'egress') return egress.onDecision(line);
}

/** The image to run, and the program files to copy in when that image is the gateway image's base. */
async function runner(docker: Docker, egress: BuildEgress): Promise<{ image: string; files: ArchiveEntry[] }> {
  if (await imageExists(docker, egress.gatewayImage)) return { image: egress.gatewayImage, files: [] };
  // The gateway image itself installs packages, so its own build needs this gateway: the program runs on
  // the image's base, which that build needs anyway.
  const source = egress.gatewaySource();
  const dockerfile = source.files.find((f) => f.path === source.dockerfileInContext);
  const base = dockerfile ? baseImage(dockerfile.source) : undefined;
  if (!base) throw new PermanentEffectError(`cannot tell the base image of ${source.dockerfile}`);
  const files: ArchiveEntry[] = source.files
    .filter((f) => ['node', 'gateway.cjs', 'listen.pl'].includes(f.path))
    .map((f) => ({
      type: 'host-file',
      path: `${OPT}/${f.path}`,
      mode: f.path === 'node' ? 0o755 : 0o644,
      uid: 0,
      gid: 0,
      source: f.source,
      size: statSync(f.source).size,
    }));
  return { image: base, files };
}

/** The FROM of a single-stage Dockerfile (the gateway image's). */
function baseImage(dockerfile: string): string | undefined {
  const text = readFileSync(dockerfile, 'utf8');
  return /^FROM\s+(\S+)/im.exec(text)?.[1];
}

async function createBuildGateway(
  docker: Docker,
  egress: BuildEgress,
  where: { name: string; network: string; address: string },
): Promise<Docker.Container> {
  const { name, network, address } = where;
  const config = GatewayConfigSchema.safeParse(buildGatewayConfig(egress));
  if (!config.success) {
    const issues = config.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    throw new PermanentEffectError(`build gateway configuration is invalid: ${issues}`);
  }
  const { image, files } = await runner(docker, egress);
  const container = await docker.createContainer({
    name,
    Image: image,
    User: `${GATEWAY_UID}:${GATEWAY_UID}`,
    Labels: bottleLabels(egress.identity, egress.agent, 'build-gateway'),
    // It listens on its build-network address only, never on the egress bridge; `node` is found in OPT
    // when the program was copied onto the base image.
    Env: [`${GATEWAY_LISTEN_ADDRESS_ENV}=${address}`, `PATH=${OPT}:/usr/local/bin:/usr/bin:/bin`],
    Entrypoint: ['perl', `${OPT}/listen.pl`],
    Cmd: [String(GATEWAY_PROXY_PORT), String(GATEWAY_CREDENTIAL_PORT)],
    Volumes: { [GATEWAY_FILES_DIR]: {}, [OPT]: {} },
    HostConfig: {
      NetworkMode: network,
      Runtime: 'runc',
      CapDrop: ['ALL'],
      SecurityOpt: ['no-new-privileges:true'],
      ReadonlyRootfs: true,
      Tmpfs: { '/tmp': 'rw,noexec,nosuid,size=16m' },
      ExtraHosts: gatewayExtraHosts(egress.extraHosts),
      ...resourceLimits(SIDECAR_LIMITS),
    },
    NetworkingConfig: { EndpointsConfig: { [network]: {} } },
  });
  const content = JSON.stringify(config.data);
  // The root is read-only: each archive is extracted inside its volume.
  const configFile: ArchiveEntry = { type: 'file', path: GATEWAY_CONFIG_PATH, mode: 0o444, uid: 0, gid: 0, content };
  await putEntries(container, [configFile], GATEWAY_FILES_DIR);
  await putEntries(container, files, OPT);
  return container;
}

/** Removes the build gateway and both build networks; absent ones are fine. */
export async function removeBuildResources(docker: Docker, names: ReturnType<typeof buildResourceNames>) {
  try {
    await docker.getContainer(names.gateway).remove({ force: true, v: true });
  } catch (err) {
    if (statusOf(err) !== 404 && statusOf(err) !== 409) throw err;
  }
  for (const network of [names.internal, names.egress]) {
    try {
      await docker.getNetwork(network).remove();
    } catch (err) {
      if (statusOf(err) !== 404) throw err;
    }
  }
}
