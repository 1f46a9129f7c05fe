import type Docker from 'dockerode';
import { IDENTITY_PATTERN } from '../../shared/identity.js';
import { bottleLabels } from '../../shared/names.js';
import { demuxLogBuffer } from './logs.js';

/**
 * Closes the path from a bottle's internal network to the Docker host.
 *
 * A container on a Docker `Internal: true` bridge still reaches the host
 * through the bridge's own address (and the host's other addresses), so every
 * host service bound to 0.0.0.0 would answer the agent. Packets the host
 * itself receives from the bridge go through INPUT; traffic between containers
 * on the bridge is bridged and does not, so dropping INPUT on the bridge
 * interface cuts the host off while the gateway stays reachable.
 *
 * The rule is installed from a one-shot container in the host's network
 * namespace (dockerode only, nothing shells out on the host) using an image
 * that carries iptables: the gateway image in production.
 */
export const HOST_GUARD_COMMENT_PREFIX = 'claude-bottle:';
const BRIDGE_PATTERN = /^[A-Za-z0-9_.-]{1,15}$/;

export interface HostGuard {
  identity: string;
  bridge: string;
}

export interface HostGuardTarget extends HostGuard {
  /** Any local image with /bin/sh and iptables (the gateway image has both). */
  image: string;
}

export function hostGuardComment(identity: string): string {
  return `${HOST_GUARD_COMMENT_PREFIX}${identity}`;
}

function checkedTarget(identity: string, bridge?: string): void {
  // Both go into an iptables command line; validate even though they are passed as argv, not interpolated.
  if (!IDENTITY_PATTERN.test(identity)) throw new Error(`refusing host guard for invalid identity ${JSON.stringify(identity)}`);
  if (bridge !== undefined && !BRIDGE_PATTERN.test(bridge)) throw new Error(`refusing host guard for invalid bridge ${JSON.stringify(bridge)}`);
}

// `$1` bridge, `$2` comment. -C first keeps a retried effect from stacking duplicates.
const INSERT_SCRIPT = `iptables -w -C INPUT -i "$1" -m comment --comment "$2" -j DROP 2>/dev/null \\
  || iptables -w -I INPUT -i "$1" -m comment --comment "$2" -j DROP`;

// `$1` comment. Deletes by rule spec (never by rule number: Docker inserts rules
// concurrently and numbers shift); every bridge that carries this bottle's
// comment goes, including ones left behind by an earlier incarnation of the bottle.
const REMOVE_SCRIPT = `set -e
for bridge in $(iptables -w -S INPUT | awk -v c="$1" -v q="\\"$1\\"" '$1=="-A" && $3=="-i" && $7=="--comment" && ($8==c || $8==q) && $10=="DROP" {print $4}'); do
  while iptables -w -C INPUT -i "$bridge" -m comment --comment "$1" -j DROP 2>/dev/null; do
    iptables -w -D INPUT -i "$bridge" -m comment --comment "$1" -j DROP
  done
done`;

/** Runs one shell script in the host's network namespace with just the capabilities iptables needs. */
async function runInHostNetwork(docker: Docker, image: string, identity: string, script: string, args: string[]): Promise<string> {
  const agent = IDENTITY_PATTERN.exec(identity)?.[1] ?? 'unknown';
  const container = await docker.createContainer({
    Image: image,
    User: 'root',
    Entrypoint: ['/bin/sh', '-c'],
    Cmd: [script, 'host-guard', ...args],
    Labels: bottleLabels(identity, agent, 'host-guard'),
    HostConfig: {
      NetworkMode: 'host',
      // runc on purpose: the rule must land in the host's netfilter, which a
      // gVisor sandbox's own network stack would not touch.
      Runtime: 'runc',
      CapDrop: ['ALL'],
      CapAdd: ['NET_ADMIN', 'NET_RAW'],
      SecurityOpt: ['no-new-privileges:true'],
    },
  });
  try {
    await container.start();
    const { StatusCode } = (await container.wait()) as { StatusCode: number };
    const raw = (await container.logs({ stdout: true, stderr: true, follow: false })) as unknown as Buffer;
    const { stdout, stderr } = demuxLogBuffer(raw);
    if (StatusCode !== 0) throw new Error(`host guard iptables step failed (exit ${StatusCode}): ${stderr.trim() || stdout.trim()}`);
    return stdout;
  } finally {
    await container.remove({ force: true }).catch(() => undefined);
  }
}

/** Idempotent: installs the DROP rule once per bridge. */
export async function ensureHostGuard(docker: Docker, target: HostGuardTarget): Promise<void> {
  checkedTarget(target.identity, target.bridge);
  await runInHostNetwork(docker, target.image, target.identity, INSERT_SCRIPT, [target.bridge, hostGuardComment(target.identity)]);
}

/** Removes every guard rule of this bottle; absent rules are fine. */
export async function removeHostGuard(docker: Docker, target: { identity: string; image: string }): Promise<void> {
  checkedTarget(target.identity);
  await runInHostNetwork(docker, target.image, target.identity, REMOVE_SCRIPT, [hostGuardComment(target.identity)]);
}

/** Parses `iptables -S INPUT` output for rules carrying our comment. */
export function parseHostGuards(iptablesRules: string): HostGuard[] {
  const guards: HostGuard[] = [];
  const rule = /^-A INPUT -i (\S+) -m comment --comment "?claude-bottle:([^"\s]+)"? -j DROP$/;
  for (const line of iptablesRules.split('\n')) {
    const m = rule.exec(line.trim());
    if (m && IDENTITY_PATTERN.test(m[2])) guards.push({ bridge: m[1], identity: m[2] });
  }
  return guards;
}

/** For orphan cleanup: every guard rule on this host, whichever bottle installed it. */
export async function listHostGuards(docker: Docker, image: string): Promise<HostGuard[]> {
  // The one-shot container needs some identity label; a reserved one keeps it out of any real bottle.
  const output = await runInHostNetwork(docker, image, 'host-guard-lister-00000', 'iptables -w -S INPUT', []);
  return parseHostGuards(output);
}

/**
 * Teardown and orphan cleanup may run after the bottle's plan is gone; any
 * locally built gateway image carries iptables, so the newest one will do.
 */
export async function findHostGuardImage(docker: Docker): Promise<string | undefined> {
  const images = await docker.listImages({ filters: JSON.stringify({ reference: ['claude-bottle/gateway'] }) });
  const newest = images.sort((a, b) => b.Created - a.Created).find((i) => (i.RepoTags ?? []).some((t) => t !== '<none>:<none>'));
  return newest?.RepoTags?.find((t) => t !== '<none>:<none>');
}
