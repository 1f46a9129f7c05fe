import { basename, dirname, join } from 'node:path';
import type { EgressLine } from '../gateway/protocol.js';
import type { ObservationEvent } from '../machines/effects.js';
import { agentImageSource, gatewayImageSource } from '../images/sources.js';
import { PACKAGE_HOSTS, planBuildHosts } from '../plan/build-hosts.js';
import type { BuildEgress } from './docker/build-gateway.js';
import { ensureImage } from './docker/images.js';
import { ObservationBatch } from './observation-batch.js';
import { namesStateDockerfile, readMetadata, stateLocations } from './state.js';
import type { EffectContext, EffectDeps, EffectHandler } from './types.js';

/** A build gateway's decision as the worker's log says it (for the shared images, which belong to no bottle). */
export function buildEgressLogLine(image: string, line: EgressLine): string {
  const verb = line.decision === 'denied' ? 'refused' : line.decision;
  const target = `${line.method ?? '?'} ${line.host ?? '?'}:${line.port ?? '?'}`;
  return `image build of ${image}: ${verb} ${target} (${line.reason})`;
}

/**
 * build_image: the gateway and agent images, built unless their tags already exist. The gateway image goes
 * first, so a build of the agent image runs its build gateway from it. Every build's RUN steps reach the
 * network only through a build gateway (docker/build-gateway.ts): the shared built-in images with the package
 * hosts, recorded in the worker's log; the bottle's own image with its build allowlist, recorded in its log.
 */
export const buildImage =
  ({ docker, log }: EffectDeps): EffectHandler<'build_image'> =>
  async (_req, ctx) => {
    const { plan } = ctx;
    // The plan decides which Dockerfile the image comes from; a resumed plan names the per-bottle one in this
    // worker's state folder, whose build context is still the bottle's original folder (kept in metadata).
    const usesStateDockerfile = namesStateDockerfile(ctx.identity, plan.image.dockerfile);
    const baseDockerfile = usesStateDockerfile
      ? ((await readMetadata(ctx.identity))?.base_dockerfile ?? null)
      : plan.image.builtin
        ? null
        : plan.image.dockerfile;
    // A Dockerfile from the CLI's machine comes with its folder as an upload, unpacked here.
    const localBase = baseDockerfile
      ? join(await ctx.uploads.local(dirname(baseDockerfile), 'build-context'), basename(baseDockerfile))
      : undefined;
    const agentSource = agentImageSource({
      dockerfile: localBase,
      stateDockerfile: usesStateDockerfile ? stateLocations(ctx.identity).dockerfile : undefined,
      bottle: plan.bottle,
    });
    const onProgress = (line: string) => ctx.progress(line);
    const shared = (image: string): BuildEgress => ({
      ...egressBase(ctx),
      allow: [...PACKAGE_HOSTS],
      extraHosts: {},
      onDecision: (line) => log?.(buildEgressLogLine(image, line)),
    });
    const gateway = await ensureImage(docker, gatewayImageSource(), plan.gateway_image, {
      onProgress,
      egress: shared(plan.gateway_image.tag),
    });
    const agent = plan.image.builtin
      ? await ensureImage(docker, agentSource, plan.image, { onProgress, egress: shared(plan.image.tag) })
      : await buildOwnImage(ctx, (egress) => ensureImage(docker, agentSource, plan.image, { onProgress, egress }));
    const cached = agent.cached && gateway.cached;
    return [{ type: 'image.built', data: { tag: agent.tag, gateway_tag: gateway.tag, cached } }];
  };

function egressBase(ctx: EffectContext): Pick<BuildEgress, 'identity' | 'agent' | 'gatewayImage' | 'gatewaySource'> {
  return {
    identity: ctx.identity,
    agent: ctx.plan.agent,
    gatewayImage: ctx.plan.gateway_image.tag,
    gatewaySource: gatewayImageSource,
  };
}

/** A build gateway's decision as the event the bottle's log records it as. */
export function buildEgressEvent(image: string, line: EgressLine): ObservationEvent {
  const { n, decision, host = '', port = 0, method = '', reason, detail } = line;
  const data = { image, decision, n, host, port, method, reason, ...(detail ? { detail } : {}) };
  return { type: 'build.egress', data };
}

/** The bottle's own image: its build gateway's decisions become build.egress events in the bottle's log. */
async function buildOwnImage<T>(ctx: EffectContext, build: (egress: BuildEgress) => Promise<T>): Promise<T> {
  const { plan } = ctx;
  const image = plan.image.tag;
  const batch = new ObservationBatch<EgressLine>((lines) =>
    ctx.observe(lines.map((line) => buildEgressEvent(image, line))),
  );
  try {
    return await build({
      ...egressBase(ctx),
      allow: planBuildHosts(plan),
      extraHosts: plan.extra_hosts,
      onDecision: (line) => batch.push(line),
    });
  } finally {
    await batch.flush();
  }
}
