// Entry for a worker child process with the fake Docker side, bundled by the
// crash test with esbuild so that the test can SIGKILL a real process.
import { Redis } from 'ioredis';
import { runWorker } from '../../src/worker/worker.js';
import { fakeEffects } from './fake-effects.js';

const socket = process.env.TEST_REDIS_SOCKET!;
const connect = () => {
  const r = new Redis({ path: socket, maxRetriesPerRequest: null });
  r.on('error', () => undefined);
  return r;
};
const delays = JSON.parse(process.env.FAKE_DELAYS ?? '{}');
const worker = await runWorker({ connect, handlers: fakeEffects({ redis: connect(), delays }), concurrency: 8, log: (l) => process.stderr.write(`${l}\n`) });
process.stdout.write('ready\n');
process.on('SIGTERM', () => void worker.close().then(() => process.exit(0)));
