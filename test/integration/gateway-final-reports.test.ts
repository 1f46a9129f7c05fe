import { afterAll, beforeAll, expect, it } from 'vitest';
import { identityFrom, PIN_DEFAULT_HOSTS, startHarness, type BottleHarness } from '../support/cli-harness.js';
import { startUpstream, type Upstream } from '../support/upstream.js';

/**
 * The gateway writes traffic counters at a bounded rate, so an agent that
 * sends a request and exits at once leaves them unwritten. Once the agent
 * has exited, its watcher asks the gateway for what it holds: the last
 * request's counters are in the log before the exit, with its bytes.
 */

const BODY = 'the-last-response-before-the-exit';
let h: BottleHarness;
let upstream: Upstream;

beforeAll(async () => {
  h = await startHarness();
  upstream = await startUpstream(h.docker, { body: BODY });
}, 180_000);

afterAll(async () => {
  await h?.cleanup();
  await upstream?.stop();
});

it("records the agent's last seconds of traffic before its exit", async () => {
  const url = `http://upstream.test:${upstream.port}/`;
  const manifest = h.writeManifest({
    bottles: [
      {
        name: 'net',
        egress: { allow: [`upstream.test:${upstream.port}`] },
        extra_hosts: { 'upstream.test': 'host-gateway', ...PIN_DEFAULT_HOSTS },
      },
    ],
    // Its watcher is following by the time the requests go, so only its asking can bring the last ones in.
    agents: [
      {
        name: 'quick',
        bottle: 'net',
        command: [
          'sh',
          '-c',
          `sleep 8; for i in 1 2 3 4 5; do curl -sS --max-time 15 -o /dev/null ${url}; done; exit 0`,
        ],
      },
    ],
  });
  const started = await h.cli(['--manifest', manifest, 'start', 'quick', '--detach']);
  expect(started.code, started.stderr).toBe(0);
  const identity = identityFrom(started);
  const events = await h.waitForEvent(identity, 'bottle.cleaned', 120_000);
  const exited = events.find((e) => e.type === 'agent.exited')!;
  expect(exited.data).toEqual({ code: 0, signal: null });
  const before = events.filter((e) => e.seq < exited.seq);
  expect(before.filter((e) => e.type === 'egress.allowed')).toHaveLength(5);
  const counted = before
    .filter((e) => e.type === 'egress.summary')
    .flatMap((e) => (e.data as { hosts: Array<{ host: string; allowed: number; bytes_down: number }> }).hosts)
    .filter((traffic) => traffic.host === 'upstream.test');
  expect(counted.at(-1)).toMatchObject({ allowed: 5 });
  expect(counted.at(-1)!.bytes_down).toBeGreaterThanOrEqual(5 * BODY.length);
}, 240_000);
