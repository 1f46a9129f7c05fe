import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';

/**
 * A throwaway real redis-server on a unix socket in a temp folder, with the
 * append-only file on, so worker tests never share queues or bottles with
 * anything else. Stopped by pid; its folder is removed on `destroy`. It
 * fsyncs every write (`appendfsync always`, as the embedded default and
 * compose run Redis) unless told otherwise.
 */
export type AppendFsync = 'always' | 'everysec';

export interface TestRedis {
  dir: string;
  socket: string;
  url: string;
  connect(): Redis;
  /** SIGTERM (Redis flushes the AOF) and wait for exit. */
  stop(): Promise<void>;
  start(): Promise<void>;
  destroy(): Promise<void>;
}

export async function startTestRedis(opts: { appendfsync?: AppendFsync } = {}): Promise<TestRedis> {
  const dir = mkdtempSync(join(tmpdir(), 'cb-redis-'));
  const socket = join(dir, 'redis.sock');
  let child: ChildProcess | undefined;
  const connections: Redis[] = [];
  const start = async () => {
    child = spawn(
      'redis-server',
      [
        '--port',
        '0',
        '--unixsocket',
        socket,
        '--unixsocketperm',
        '700',
        '--dir',
        dir,
        '--appendonly',
        'yes',
        '--appendfsync',
        opts.appendfsync ?? 'always',
        '--save',
        '',
      ],
      { stdio: 'ignore' },
    );
    for (let i = 0; i < 200; i++) {
      const probe = new Redis({ path: socket, lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
      probe.on('error', () => undefined);
      try {
        await probe.connect();
        if ((await probe.ping()) === 'PONG') return;
      } catch {
        /* not up yet */
      } finally {
        probe.disconnect();
      }
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error('test redis-server did not start');
  };
  const stop = async () => {
    const c = child;
    if (!c || c.exitCode !== null) return;
    const exited = new Promise<void>((r) => c.once('exit', () => r()));
    c.kill('SIGTERM');
    await exited;
  };
  await start();
  return {
    dir,
    socket,
    url: `unix://${socket}`,
    connect() {
      const r = new Redis({ path: socket, maxRetriesPerRequest: null });
      r.on('error', () => undefined);
      connections.push(r);
      return r;
    },
    stop,
    start,
    async destroy() {
      for (const c of connections) c.disconnect();
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
