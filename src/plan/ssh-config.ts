import { GATEWAY_PROXY_PORT, GATEWAY_SSH_AGENT_PORT } from '../gateway/protocol.js';
import type { BottlePlan } from './schema.js';

/**
 * SSH in a bottle. The private keys never enter the agent container: the CLI
 * reads them on the host and hands them to the gateway with the route secrets
 * (under sshKeyId), and the gateway serves them as an ssh-agent on its
 * internal address. Inside the bottle:
 *
 * - `~/.ssh/config` sends every ssh connection through the gateway's proxy
 *   port with HTTP CONNECT (OpenBSD netcat's `-X connect`: socat's PROXY
 *   address fails under gVisor here, reading the proxy's answer), so the
 *   allowlist decides which `host:22` is reachable and every attempt is an
 *   egress decision;
 * - a bridge started before the agent's command (socat again) serves the
 *   gateway's ssh-agent at SSH_AUTH_SOCK, a Unix socket inside the bottle: a
 *   socket shared with the gateway through a volume cannot be used under
 *   gVisor, which refuses connections to sockets of another container.
 *
 * So ssh needs `nc` (netcat-openbsd) and `socat` in the image; the built-in
 * image has both.
 */

export const SSH_AUTH_SOCK_TARGET = '/home/node/.ssh/agent.sock';
export const SSH_AGENT_BRIDGE_PATH = '/usr/local/lib/claude-bottle/ssh-agent-bridge';

/** The secrets-file entry holding the private key of the plan's ssh entry at `index`. */
export function sshKeyId(index: number): string {
  return `ssh-key-${index}`;
}

export function hasSsh(plan: { ssh?: BottlePlan['ssh'] }): boolean {
  return (plan.ssh?.length ?? 0) > 0;
}

/** `~/.ssh/config`: every host through the gateway; the agent at SSH_AUTH_SOCK signs. */
export function sshClientConfig(hosts: readonly string[], gatewayIp: string): string {
  const lines = [
    '# Written by claude-bottle: ssh goes out through the gateway, whose ssh-agent holds the keys',
    `# of the manifest's ssh entries (${hosts.join(', ')}). Only allowlisted host:22 is reachable.`,
    '',
    'Host *',
    `  ProxyCommand nc -X connect -x ${gatewayIp}:${GATEWAY_PROXY_PORT} %h %p`,
    // The bottle starts with an empty known_hosts; a changed key is still refused.
    '  StrictHostKeyChecking accept-new',
    '',
  ];
  return lines.join('\n');
}

/**
 * Runs before the image's entrypoint: serves the gateway's ssh-agent at
 * SSH_AUTH_SOCK in the background, then becomes the agent's command.
 */
export function sshAgentBridgeScript(gatewayIp: string): string {
  return [
    '#!/bin/sh',
    "# Written by claude-bottle: serves the gateway's ssh-agent at $SSH_AUTH_SOCK, then runs the command.",
    'if command -v socat >/dev/null 2>&1; then',
    '  rm -f "$SSH_AUTH_SOCK"',
    `  socat UNIX-LISTEN:"$SSH_AUTH_SOCK",fork,mode=600 TCP:${gatewayIp}:${GATEWAY_SSH_AGENT_PORT} \\`,
    '    </dev/null >/dev/null 2>&1 &',
    'else',
    '  echo "claude-bottle: this image has no socat, so ssh cannot reach the gateway\'s ssh-agent" >&2',
    'fi',
    'exec "$@"',
    '',
  ].join('\n');
}

/** The agent's entrypoint with the bridge right after the init program (which waits for the proxy). */
export function withSshAgentBridge<T extends { entrypoint: string[] }>(launch: T): T {
  const [init, ...rest] = launch.entrypoint;
  return { ...launch, entrypoint: [init, SSH_AGENT_BRIDGE_PATH, ...rest] };
}
