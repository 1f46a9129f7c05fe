import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Docker from 'dockerode';
import { buildEgressEvent } from '../../src/effects/build-image.js';
import { buildResourceNames } from '../../src/effects/docker/build-gateway.js';
import type { ObservationEvent } from '../../src/machines/effects.js';
import { ensureImage } from '../../src/effects/docker/images.js';
import type { EgressLine } from '../../src/gateway/protocol.js';
import { agentImageSource, gatewayImageSource, imagePlan } from '../../src/images/sources.js';
import { PACKAGE_HOSTS } from '../../src/plan/build-hosts.js';
import { ensureToolsImage, testLabels } from './docker.js';

/**
 * Finding 21.3's reproduction, shared by its dedicated test and the escape suite: a bottle's Dockerfile built
 * the way build_image builds it (behind a build gateway), with what its build gateway decided and what it left.
 */
export interface BuildAttempt {
  built: boolean;
  error: string | null;
  decisions: EgressLine[];
  /** The same decisions as the build.egress events build_image appends to the bottle's log. */
  events: ObservationEvent[];
  /** Build containers and networks still there afterwards (there should be none). */
  leftovers: string[];
  tag: string;
}

/** A Dockerfile RUN line sending one plain-HTTP proxy request by hand (bash only: the base image has no curl). */
export function proxiedRequestRun(method: string, url: string): string {
  const host = new URL(url).host;
  return (
    `RUN bash -c 'p=\${http_proxy#http://}; p=\${p%/}; exec 3<>/dev/tcp/\${p%:*}/\${p##*:} && ` +
    `printf "${method} ${url} HTTP/1.1\\r\\nHost: ${host}\\r\\nConnection: close\\r\\n\\r\\n" >&3 && head -1 <&3'`
  );
}

export async function buildBehindGateway(
  docker: Docker,
  identity: string,
  dockerfileBody: string,
  opts: { gatewayImage?: string; allow?: string[] } = {},
): Promise<BuildAttempt> {
  const dir = await mkdtemp(join(tmpdir(), 'cb-build-egress-'));
  try {
    await mkdir(join(dir, 'ctx'));
    const dockerfile = join(dir, 'ctx', 'Dockerfile');
    await writeFile(dockerfile, dockerfileBody);
    const src = agentImageSource({ dockerfile, bottle: identity });
    const plan = await imagePlan(src, { persist: false });
    const decisions: EgressLine[] = [];
    let error: string | null = null;
    try {
      await ensureImage(docker, src, plan, {
        egress: {
          identity,
          agent: identity.split('-')[0],
          allow: opts.allow ?? [...PACKAGE_HOSTS],
          extraHosts: {},
          gatewayImage: opts.gatewayImage ?? (await imagePlan(gatewayImageSource())).tag,
          gatewaySource: gatewayImageSource,
          onDecision: (line) => void decisions.push(line),
        },
      });
    } catch (err) {
      error = (err as Error).message;
    }
    const names = Object.values(buildResourceNames(identity));
    const [containers, networks] = await Promise.all([docker.listContainers({ all: true }), docker.listNetworks()]);
    const leftovers = [
      ...containers.flatMap((c) => c.Names.map((n) => n.replace(/^\//, ''))),
      ...networks.map((n) => n.Name),
    ].filter((n) => names.includes(n));
    const events = decisions.map((line) => buildEgressEvent(plan.tag, line));
    return { built: error === null, error, decisions, events, leftovers, tag: plan.tag };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * A listener of the test's own on Docker's default bridge, where builds used to run their RUN steps: a direct
 * connect from a build reaching it shows as an accepted connection in its log.
 */
export async function startBridgeListener(
  docker: Docker,
  identity: string,
): Promise<{ ip: string; port: number; accepted(): Promise<number>; remove(): Promise<void> }> {
  const image = await ensureToolsImage(docker);
  const port = 8080;
  const container = await docker.createContainer({
    name: `cb-${identity}-direct-target`,
    Image: image,
    Labels: testLabels(identity, 'direct-target'),
    Cmd: ['socat', '-d', '-d', `TCP-LISTEN:${port},fork,reuseaddr`, 'SYSTEM:echo hit'],
    HostConfig: { NetworkMode: 'bridge' },
  });
  await container.start();
  const info = await container.inspect();
  const ip = info.NetworkSettings.Networks.bridge?.IPAddress ?? '';
  return {
    ip,
    port,
    accepted: async () => {
      const log = (await container.logs({ stdout: true, stderr: true })).toString('utf8');
      return (log.match(/accepting connection/g) ?? []).length;
    },
    remove: () => container.remove({ force: true }).then(() => undefined),
  };
}
