// Entry for a worker child process with the fake Docker side, bundled by the
// crash test with esbuild so that the test can SIGKILL a real process.
import { Redis } from 'ioredis';
import { runWorker } from '../../src/worker/worker.js';
import { fakeEffects, type FakeEffectsOptions } from './fake-effects.js';

const socket = process.env.TEST_REDIS_SOCKET!;
const connect = () => {
  const r = new Redis({ path: socket, maxRetriesPerRequest: null });
  r.on('error', () => undefined);
  return r;
};
const delays = JSON.parse(process.env.FAKE_DELAYS ?? '{}') as FakeEffectsOptions['delays'];
const handlers = fakeEffects({ redis: connect(), delays });
const log = (line: string) => void process.stderr.write(`${line}\n`);
const worker = await runWorker({ connect, handlers, concurrency: 8, log });
process.stdout.write('ready\n');
process.on('SIGTERM', () => void worker.close().then(() => process.exit(0)));
