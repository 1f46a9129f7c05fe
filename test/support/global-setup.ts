import Docker from 'dockerode';
import { ensureImage } from '../../src/effects/docker/images.js';
import { agentImageSource, gatewayImageSource, imagePlan } from '../../src/images/sources.js';
import { PACKAGE_HOSTS } from '../../src/plan/build-hosts.js';

/**
 * Builds the built-in agent and gateway images once before any integration
 * test, with progress on stderr. On a fresh machine this is a few minutes of
 * apt-get from Debian's mirror; doing it here keeps that out of the first
 * test's own timeouts. Both are content-addressed caches, so later runs skip it.
 * They are built as a bottle's launch builds them, through a build gateway: a
 * build's RUN steps get no network otherwise, and a step run through the
 * gateway is cached apart from one run without it.
 */
export default async function setup(): Promise<void> {
  const docker = new Docker();
  const gatewayPlan = await imagePlan(gatewayImageSource());
  for (const src of [gatewayImageSource(), agentImageSource({})]) {
    const plan = await imagePlan(src);
    const t0 = Date.now();
    let lastStep = '';
    const result = await ensureImage(docker, src, plan, {
      egress: {
        identity: 'test-setup-00000',
        agent: 'setup',
        allow: [...PACKAGE_HOSTS],
        extraHosts: {},
        gatewayImage: gatewayPlan.tag,
        gatewaySource: gatewayImageSource,
        onDecision: () => {},
      },
      onProgress: (line) => {
        const step = /^Step \d+\/\d+ : .*/.exec(line.trim())?.[0];
        if (step && step !== lastStep) {
          lastStep = step;
          process.stderr.write(`[global-setup] ${plan.tag}: ${step.slice(0, 100)}\n`);
        }
      },
    });
    const outcome = result.cached ? 'cached' : `built in ${Math.round((Date.now() - t0) / 1000)} s`;
    process.stderr.write(`[global-setup] ${result.tag} ${outcome}\n`);
  }
}
