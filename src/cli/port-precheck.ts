import { createServer } from 'node:net';
import type { Redis } from 'ioredis';
import { RuntimeFailure } from '../shared/errors.js';
import type { PortSpec } from '../shared/port-spec.js';
import { reachesBottleDocker } from './bottle-docker.js';

/** Binds and releases address:port here: the one line a taken port gets, before anything is created. */
async function checkFree(port: PortSpec): Promise<void> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      const where = `${port.address}:${port.host_port}`;
      if (err.code === 'EADDRINUSE') reject(new RuntimeFailure(`port ${where} is already in use on this host`));
      else if (err.code === 'EADDRNOTAVAIL')
        reject(new RuntimeFailure(`cannot publish ${where}: ${port.address} is not an address of this host`));
      else if (err.code === 'EACCES')
        reject(new RuntimeFailure(`cannot publish ${where}: ports below 1024 need privileges on this host`));
      else reject(err);
    });
    server.listen({ host: port.address, port: port.host_port, exclusive: true }, () => server.close(() => resolve()));
  });
}

/**
 * Ports to publish on the bottle's host, checked free when that host's Docker is this machine's (where else
 * they would be published is out of this machine's sight: the worker then reports a taken port as an event).
 */
export async function checkPortsFree(redis: Redis, host: string, ports: readonly PortSpec[]): Promise<void> {
  if (ports.length === 0 || process.env.DOCKER_HOST || !(await reachesBottleDocker(redis, host))) return;
  for (const port of ports) await checkFree(port);
}
