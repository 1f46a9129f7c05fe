/**
 * Container entry point of the port forwarder (bundled to port-forwarder.cjs): the host side of a published
 * port. It listens only on its host-side addresses (never on the bottle's internal network, so the agent
 * cannot reach it) and connects every accepted connection to one fixed place, the agent's port: nothing the
 * agent sends can make it connect anywhere else.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';
import { networkInterfaces } from 'node:os';
import { ipToInt, parseCidr } from '../shared/subnet-pool.js';
import {
  FORWARDER_INTERNAL_SUBNET_ENV,
  FORWARDER_LISTEN_PORT,
  FORWARDER_READY,
  FORWARDER_TARGET_ENV,
} from './protocol.js';

/** Open connections at once: a flood from the host side is bounded, not buffered. */
const MAX_CONNECTIONS = 256;

function target(value: string | undefined): { host: string; port: number } {
  const match = /^(\d{1,3}(?:\.\d{1,3}){3}):(\d{1,5})$/.exec(value ?? '');
  if (!match || ipToInt(match[1]) === undefined || Number(match[2]) < 1 || Number(match[2]) > 65535)
    throw new Error(`${FORWARDER_TARGET_ENV} must be ADDRESS:PORT, got ${JSON.stringify(value)}`);
  return { host: match[1], port: Number(match[2]) };
}

/** Every IPv4 address of this container outside the internal subnet and loopback: the host-facing side. */
export function hostSideAddresses(internalSubnet: string): string[] {
  const internal = parseCidr(internalSubnet);
  const size = 2 ** (32 - internal.prefix);
  const inside = (ip: string) => {
    const n = ipToInt(ip);
    return n !== undefined && n >= internal.base && n < internal.base + size;
  };
  return Object.values(networkInterfaces())
    .flat()
    .filter((a) => a !== undefined && a.family === 'IPv4' && !a.internal && !inside(a.address))
    .map((a) => a!.address);
}

function forward(client: Socket, to: { host: string; port: number }): void {
  const upstream = connect(to.port, to.host);
  // pipe() applies backpressure both ways; either side ending or failing ends both.
  client.pipe(upstream).pipe(client);
  const close = () => {
    client.destroy();
    upstream.destroy();
  };
  client.on('error', close).on('close', close);
  upstream.on('error', close).on('close', close);
}

function listen(address: string, to: { host: string; port: number }): Promise<Server> {
  const server = createServer((client) => forward(client, to));
  server.maxConnections = MAX_CONNECTIONS;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(FORWARDER_LISTEN_PORT, address, () => resolve(server));
  });
}

async function main(): Promise<void> {
  const to = target(process.env[FORWARDER_TARGET_ENV]);
  const addresses = hostSideAddresses(process.env[FORWARDER_INTERNAL_SUBNET_ENV] ?? '');
  if (addresses.length === 0) throw new Error('no host-side address to listen on');
  await Promise.all(addresses.map((address) => listen(address, to)));
  process.stdout.write(`${FORWARDER_READY} ${addresses.join(',')} -> ${to.host}:${to.port}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`port-forwarder: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
