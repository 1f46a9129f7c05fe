import type Docker from 'dockerode';
import { isAbsolute } from 'node:path';
import type { BottlePlan } from '../../plan/schema.js';
import { bottleLabels } from '../../shared/names.js';
import { sidecarHostConfig } from '../docker/containers.js';
import { PermanentEffectError } from '../types.js';
import { PIPELOCK_LISTEN_PORT } from './config.js';

/**
 * The pipelock sidecar container. It plays the gateway's egress role for a
 * bottle with `egress.proxy: "pipelock"`: created on the egress network (the
 * caller then connects it to the internal one, as for the gateway), and
 * hardened the same way: no capabilities, no-new-privileges, read-only root,
 * unprivileged uid, no Docker socket, no secrets in its environment (its DLP
 * `scan_env` scans that environment). It runs under runc for the same reason
 * as the gateway: it must reach the outside network.
 *
 * The generated config is a host file bind-mounted read-only, so neither
 * pipelock nor anything it runs can change its own policy; pipelock's hot
 * reload still sees a new file if the worker replaces it.
 */

/** Where the config appears inside the container. */
export const PIPELOCK_CONFIG_PATH = '/etc/pipelock/pipelock.yaml';
export const PIPELOCK_UID = 65534;
export const PIPELOCK_ROLE = 'pipelock';

/** `cb-<identity>-pipelock`, beside the bottle's other deterministic names. */
export function pipelockContainerName(identity: string): string {
  return `cb-${identity}-pipelock`;
}

export interface PipelockContainerOptions {
  /** Must match the config's `fetch_proxy.listen` port. */
  listenPort?: number;
}

/**
 * @param image the pipelock image (plan.egress.pipelock_image, or the default tag)
 * @param configPath absolute host path of the file written from `generatePipelockConfig`
 */
export function pipelockContainerSpec(
  plan: BottlePlan,
  image: string,
  configPath: string,
  opts: PipelockContainerOptions = {},
): Docker.ContainerCreateOptions {
  if (!isAbsolute(configPath))
    throw new PermanentEffectError(`pipelock config path must be absolute, got ${JSON.stringify(configPath)}`);
  if (configPath.includes(':'))
    throw new PermanentEffectError(
      `pipelock config path cannot contain ":" (Docker bind syntax): ${JSON.stringify(configPath)}`,
    );
  const port = opts.listenPort ?? PIPELOCK_LISTEN_PORT;
  const egress = plan.networks.egress;
  return {
    name: pipelockContainerName(plan.identity),
    Image: image,
    // The image's entrypoint is the pipelock binary; these are its documented `run` flags.
    Cmd: ['run', '--config', PIPELOCK_CONFIG_PATH, '--listen', `0.0.0.0:${port}`],
    User: `${PIPELOCK_UID}:${PIPELOCK_UID}`,
    // Only HOME, pointed at the tmpfs: nothing secret for scan_env to learn, nowhere writable but /tmp.
    Env: ['HOME=/tmp'],
    Tty: false,
    Labels: bottleLabels(plan.identity, plan.agent, PIPELOCK_ROLE),
    ExposedPorts: { [`${port}/tcp`]: {} },
    HostConfig: {
      ...sidecarHostConfig(plan, egress),
      Binds: [`${configPath}:${PIPELOCK_CONFIG_PATH}:ro`],
    },
    NetworkingConfig: { EndpointsConfig: { [egress]: {} } },
  };
}
