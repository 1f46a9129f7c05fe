import type { BottlePlan } from './schema.js';

/**
 * What image builds may fetch, through a build gateway (src/effects/docker/build-gateway.ts). The built-in
 * images (images/agent, images/gateway) install Debian packages with apt from the hosts their base image's
 * sources name; a bottle's own Dockerfile may also fetch from the bottle's allowlist.
 */
export const PACKAGE_HOSTS: readonly string[] = ['deb.debian.org', 'security.debian.org'];

/**
 * The build allowlist of a bottle's image: a built-in image is shared by every bottle, so it gets the package
 * hosts only; the bottle's own Dockerfile (or an approved change of it) gets them plus the bottle's hosts.
 */
export function buildHosts(hosts: readonly string[], builtin: boolean): string[] {
  return builtin ? [...PACKAGE_HOSTS].sort() : [...new Set([...hosts, ...PACKAGE_HOSTS])].sort();
}

/** A plan from before build allowlists carries none; its build gets the one it would have been planned with. */
export function planBuildHosts(plan: Pick<BottlePlan, 'hosts' | 'build_hosts' | 'image'>): string[] {
  return plan.build_hosts ?? buildHosts(plan.hosts, plan.image.builtin);
}
