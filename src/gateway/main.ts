/**
 * Container entry point of the egress gateway (bundled to gateway.cjs).
 * stdout carries only JSON lines (ready, egress, capability) for the
 * launcher; everything for humans goes to stderr.
 */
import { readFileSync } from 'node:fs';
import { GatewayConfigError, readGatewayFiles } from './config.js';
import {
  GATEWAY_BUDGET_PATH,
  GATEWAY_CONFIG_PATH,
  GATEWAY_DECISIONS_DIR,
  GATEWAY_LISTEN_ADDRESS_ENV,
  GATEWAY_REPORT_SIGNAL,
  GATEWAY_NETWATCH_TOKEN_PATH,
  GATEWAY_SECRETS_PATH,
  type GatewayLine,
} from './protocol.js';
import { startGateway, type InheritedSockets } from './gateway.js';

function writeLine(line: GatewayLine): void {
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

/** `GATEWAY_LISTEN_FDS=PROXY_FD,CREDENTIAL_FD`, set by listen.pl for the sockets it bound. */
function inheritedSockets(value: string | undefined): InheritedSockets | undefined {
  if (!value) return undefined;
  const fds = value.split(',').map(Number);
  if (fds.length !== 2 || !fds.every((fd) => Number.isInteger(fd) && fd > 2))
    throw new Error(`GATEWAY_LISTEN_FDS must be two descriptors, got ${JSON.stringify(value)}`);
  return { proxy: fds[0], credential: fds[1] };
}

/** Written by the launcher beside the config when the bottle has a network watch. */
function readNetwatchToken(): string {
  try {
    return readFileSync(GATEWAY_NETWATCH_TOKEN_PATH, 'utf8').trim();
  } catch (err) {
    throw new GatewayConfigError(`cannot read the network watch token: ${(err as Error).message}`);
  }
}

async function main(): Promise<void> {
  const { config, secrets } = readGatewayFiles(
    process.env.GATEWAY_CONFIG || GATEWAY_CONFIG_PATH,
    process.env.GATEWAY_SECRETS || GATEWAY_SECRETS_PATH,
  );
  const gateway = await startGateway(config, secrets, {
    onDecision: writeLine,
    // The gateway's internal-network address (listen.pl binds its TCP ports there too); loopback when unset.
    listenHost: process.env[GATEWAY_LISTEN_ADDRESS_ENV] || '127.0.0.1',
    inheritedSockets: inheritedSockets(process.env.GATEWAY_LISTEN_FDS),
    decisionsDir: GATEWAY_DECISIONS_DIR,
    budgetFile: GATEWAY_BUDGET_PATH,
    netwatchToken: config.netwatch_port !== null ? readNetwatchToken() : undefined,
  });
  // The worker has written a decision (src/effects/answer.ts).
  process.on('SIGHUP', () => {
    try {
      gateway.reloadDecisions();
    } catch (err) {
      process.stderr.write(`gateway: reading decisions failed: ${(err as Error).message}\n`);
    }
  });
  // The worker asks once the agent has exited (src/effects/docker/gateway-reports.ts).
  process.on(GATEWAY_REPORT_SIGNAL, () => {
    gateway.writeReports();
    writeLine({ t: 'reported' });
  });
  writeLine({
    t: 'ready',
    proxy_port: gateway.proxyPort,
    credential_port: gateway.credentialPort,
    ...(gateway.interceptionCaPem ? { interception_ca: gateway.interceptionCaPem } : {}),
    takes_decisions: true,
    writes_reports: true,
  });
  const ports = [`proxy ${gateway.proxyPort}`, `credentials ${gateway.credentialPort}`];
  if (gateway.dnsPort !== undefined) ports.push(`dns ${gateway.dnsPort}`);
  if (gateway.netwatchPort !== undefined) ports.push(`netwatch ${gateway.netwatchPort}`);
  process.stderr.write(`gateway: ${config.identity} listening: ${ports.join(', ')}\n`);

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`gateway: ${signal}, shutting down\n`);
    gateway.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
    // Open streams must not hold the container past its stop timeout.
    setTimeout(() => process.exit(0), 5000).unref();
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((err: unknown) => {
  const message = err instanceof GatewayConfigError ? err.message : `failed to start: ${(err as Error).message}`;
  process.stderr.write(`gateway: ${message}\n`);
  process.exit(1);
});
