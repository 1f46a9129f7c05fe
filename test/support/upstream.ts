import type Docker from 'dockerode';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { ensureToolsImage, execIn } from './docker.js';

/**
 * A stand-in "upstream" web server for egress tests: a socat container in the
 * host's network namespace listening on 0.0.0.0:<free port>, so a bottle's
 * gateway reaches it through the egress bridge's gateway address exactly as it
 * would reach any host service pinned with `host-gateway`. Every accepted TCP
 * connection is counted in a file inside the container before anything is
 * read, so a test can prove that a refused request never connected at all.
 *
 * The container carries no claude-bottle labels: it is the test's own
 * resource, removed by `stop()`, and `bottle cleanup` must never see it.
 */
export const UPSTREAM_TEST_LABEL = 'dev.claude-bottle-test.role';

export interface Upstream {
  port: number;
  body: string;
  container: Docker.Container;
  /** TCP connections the server has accepted so far. */
  connections(): Promise<number>;
  stop(): Promise<void>;
}

// One process per connection (socat fork + EXEC): count first, read the request
// head up to the blank line (so closing never resets unread data), answer.
const RESPONSE_FORMAT =
  'HTTP/1.1 200 OK\\r\\nContent-Type: text/plain\\r\\nContent-Length: %d\\r\\nConnection: close\\r\\n\\r\\n%s';
const SERVE_SCRIPT = `#!/bin/sh
echo hit >> /tmp/hits
sed -u -n '/^\\r\\{0,1\\}$/q'
printf '${RESPONSE_FORMAT}' "\${#UPSTREAM_BODY}" "$UPSTREAM_BODY"
`;

/** A port free on every interface right now (the kernel picks it). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '0.0.0.0', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export async function startUpstream(
  docker: Docker,
  opts: {
    body: string;
    name?: string;
    /** Listen on this host address only (default: every address). */ bind?: string;
  },
): Promise<Upstream> {
  const image = await ensureToolsImage(docker);
  const port = await freePort();
  const name = opts.name ?? `cbtest-upstream-${randomBytes(4).toString('hex')}`;
  const container = await docker.createContainer({
    name,
    Image: image,
    Env: [
      `UPSTREAM_BODY=${opts.body}`,
      `UPSTREAM_PORT=${port}`,
      `UPSTREAM_BIND=${opts.bind ? `,bind=${opts.bind}` : ''}`,
      `SERVE_SCRIPT=${SERVE_SCRIPT}`,
    ],
    Entrypoint: ['/bin/sh', '-c'],
    Cmd: [
      'printf "%s" "$SERVE_SCRIPT" > /tmp/serve.sh && chmod +x /tmp/serve.sh && : > /tmp/hits && ' +
        'exec socat -d -d TCP-LISTEN:$UPSTREAM_PORT$UPSTREAM_BIND,fork,reuseaddr EXEC:/tmp/serve.sh',
    ],
    Labels: { [UPSTREAM_TEST_LABEL]: 'upstream' },
    HostConfig: { NetworkMode: 'host', Runtime: 'runc', AutoRemove: false },
  });
  const stop = async () => {
    await container.remove({ force: true }).catch(() => undefined);
  };
  try {
    await container.start();
    // Ready once socat logs its listening socket; probing the port would itself count as a connection.
    const deadline = Date.now() + 15_000;
    for (;;) {
      const logs = ((await container.logs({ stdout: true, stderr: true })) as unknown as Buffer).toString('latin1');
      if (/listening on/.test(logs)) break;
      const info = await container.inspect();
      if (!info.State.Running) throw new Error(`upstream ${name} exited: ${logs}`);
      if (Date.now() > deadline) throw new Error(`upstream ${name} not listening within 15 s: ${logs}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    port,
    body: opts.body,
    container,
    async connections() {
      const { output } = await execIn(container, ['sh', '-c', 'wc -l < /tmp/hits']);
      return Number(output.trim());
    },
    stop,
  };
}
