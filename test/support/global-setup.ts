import Docker from 'dockerode';
import { ensureImage } from '../../src/effects/docker/images.js';
import { agentImageSource, gatewayImageSource, imagePlan } from '../../src/images/sources.js';

/**
 * Builds the built-in agent and gateway images once before any integration
 * test, with progress on stderr. On a fresh machine this is a few minutes of
 * apt-get from Debian's mirror; doing it here keeps that out of the first
 * test's own timeouts. Both are content-addressed caches, so later runs skip it.
 */
export default async function setup(): Promise<void> {
  const docker = new Docker();
  for (const src of [agentImageSource({}), gatewayImageSource()]) {
    const plan = await imagePlan(src);
    const t0 = Date.now();
    let lastStep = '';
    const result = await ensureImage(docker, src, plan, {
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
