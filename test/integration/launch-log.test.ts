import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bottleKeys } from '../../src/event-store/keys.js';
import type { LifecycleEvent } from '../../src/events/schema.js';
import { LABELS, resourceNames } from '../../src/shared/names.js';
import { identityFrom, PIN_DEFAULT_HOSTS, startHarness, type BottleHarness } from '../support/cli-harness.js';

/**
 * A real bottle's launch as its event log tells it, checked against what
 * Docker itself saw: one start event in the log per container Docker
 * started, each appended by the effect that starts that container, in the
 * order Docker started them, and each carrying Docker's own start time.
 */

/** The start event of each launch effect, and the effect that reports it. */
const START_EVENTS = {
  'gateway.started': 'start_gateway',
  'pipelock.started': 'start_pipelock',
  'agent.started': 'start_agent',
  'netwatch.started': 'start_netwatch',
} as const;
type StartEventType = keyof typeof START_EVENTS;
type StartEvent = Extract<LifecycleEvent, { type: StartEventType }>;

function isStartEvent(event: LifecycleEvent): event is StartEvent {
  return Object.prototype.hasOwnProperty.call(START_EVENTS, event.type);
}

interface DockerStart {
  id: string;
  name: string;
}

let h: BottleHarness;
let redis: Redis;
let manifest: string;

beforeAll(async () => {
  h = await startHarness();
  redis = new Redis({ path: h.redis.socket, maxRetriesPerRequest: null });
  manifest = h.writeManifest({
    bottles: [{ name: 'box', egress: { allow: [] }, extra_hosts: PIN_DEFAULT_HOSTS }],
    agents: [{ name: 'logged', bottle: 'box', command: ['sleep', '600'] }],
  });
}, 180_000);

afterAll(async () => {
  redis?.disconnect();
  await h?.cleanup();
});

/** Docker's container start events for one bottle between two times (Unix seconds), in the daemon's order. */
async function dockerStarts(identity: string, since: number, until: number): Promise<DockerStart[]> {
  const filters = { type: ['container'], event: ['start'], label: [`${LABELS.identity}=${identity}`] };
  // With `until` the daemon ends the stream once it has sent everything up to then.
  const stream = await h.docker.getEvents({ since, until, filters: JSON.stringify(filters) });
  let text = '';
  for await (const chunk of stream) text += chunk.toString();
  return text
    .split('\n')
    .filter((line) => line.trim())
    .map((line) => JSON.parse(line) as { Actor: { ID: string; Attributes: { name: string } } })
    .map((e) => ({ id: e.Actor.ID, name: e.Actor.Attributes.name }));
}

/** The effect whose append wrote event `seq`, from the log's record of append causes. */
async function causeOf(identity: string, seq: number): Promise<string | undefined> {
  const causes = await redis.hgetall(bottleKeys(identity).causes);
  for (const [cause, range] of Object.entries(causes)) {
    const [first, last] = range.split('-').map(Number);
    if (seq >= first && seq <= last) return `${cause} (seqs ${range})`;
  }
  return undefined;
}

async function labelledCount(identity: string): Promise<number> {
  const filters = JSON.stringify({ label: [`${LABELS.identity}=${identity}`] });
  const [containers, networks] = await Promise.all([
    h.docker.listContainers({ all: true, filters }),
    h.docker.listNetworks({ filters }),
  ]);
  return containers.length + networks.length;
}

describe("a real bottle's launch log", () => {
  let identity: string;
  let starts: StartEvent[];
  let docker: DockerStart[];

  beforeAll(async () => {
    const since = Math.floor(Date.now() / 1000) - 1;
    identity = identityFrom(await h.cli(['--manifest', manifest, 'start', 'logged', '--detach']));
    await h.waitForEvent(identity, 'agent.started');
    await h.waitForEvent(identity, 'gateway.ready');
    const events = await h.waitForEvent(identity, 'netwatch.started');
    starts = events.filter(isStartEvent);
    docker = await dockerStarts(identity, since, Math.ceil(Date.now() / 1000) + 1);
  }, 240_000);

  it('holds exactly one start event per container Docker started, in the order Docker started them', () => {
    const names = resourceNames(identity);
    // Pipelock is reported by id, the others by name.
    const container = (e: DockerStart) => [e.name, e.id];
    const expected = [names.agentContainer, names.gatewayContainer, names.netwatchContainer];
    expect(docker.map((e) => e.name).sort()).toEqual(expected.sort());
    expect(starts.map((e) => e.type).sort()).toEqual(['agent.started', 'gateway.started', 'netwatch.started']);
    expect(starts).toHaveLength(docker.length);
    // Log order (seq) against the order Docker reported the starts in.
    starts.forEach((event, i) => expect(container(docker[i])).toContain(event.data.container));
  });

  it('records each start from its own effect', async () => {
    for (const event of starts) {
      const cause = await causeOf(identity, event.seq);
      // effect.<identity>.<causedBySeq>.<kind>, one append holding this one event.
      const effect = START_EVENTS[event.type];
      const own = new RegExp(`^effect\\.${identity}\\.\\d+\\.${effect} \\(seqs ${event.seq}-${event.seq}\\)$`);
      expect(cause, `${event.type} (seq ${event.seq})`).toMatch(own);
    }
  });

  it("records Docker's own start time of each container", async () => {
    for (const event of starts) {
      const info = await h.docker.getContainer(event.data.container).inspect();
      expect(event.data.started_at, event.type).toBe(info.State.StartedAt);
    }
  });

  it('bottle stop leaves no labelled container or network', async () => {
    const stopped = await h.cli(['stop', identity]);
    expect(stopped.code, stopped.stderr).toBe(0);
    expect(await labelledCount(identity)).toBe(0);
  }, 120_000);
});
