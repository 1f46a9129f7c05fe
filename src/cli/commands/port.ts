import type { Command } from 'commander';
import type { LifecycleEvent } from '../../events/schema.js';
import { currentState } from '../../engine/bottle-log.js';
import { accepts, bottleStatus, stateName, type BottleState } from '../../machines/index.js';
import { RuntimeFailure, UsageError } from '../../shared/errors.js';
import type { CliIO } from '../../shared/io.js';
import { formatPortSpec, isExposedAddress, type PortSpec } from '../../shared/port-spec.js';
import { visibleText } from '../../shared/visible-text.js';
import { checkIdentityArg } from '../identity-arg.js';
import { operator } from '../capability-decision.js';
import { checkPortsFree } from '../port-precheck.js';
import type { CliContext } from '../program.js';
import { publishedPorts } from '../publish-option.js';
import { describeEvent } from '../render-event.js';
import { commandAndFollow, openSession, type Session } from '../session.js';

export interface PortOptions {
  identity: string;
  spec?: string;
  remove?: string;
  manifestPath?: string;
}

export function register(program: Command, cli: CliContext): void {
  program
    .command('port')
    .description('publish a port of a running bottle on the host (127.0.0.1 unless given), or close one')
    .argument('<identity>')
    .argument('[spec]', '[addr:]host_port:bottle_port')
    .option('--remove <host_port>', 'close the port published on this host port')
    .action((identity: string, spec: string | undefined, o: { remove?: string }) =>
      cli.run(() => runPort({ identity, spec, remove: o.remove, manifestPath: cli.manifestPath() }, cli.io)),
    );
}

function hostPortArg(text: string): number {
  const n = Number(text);
  if (!/^\d{1,5}$/.test(text) || n < 1 || n > 65535) throw new UsageError(`--remove takes a host port, got ${text}`);
  return n;
}

/** `bottle port`: one port.publish_requested or port.unpublish_requested, followed to its outcome. */
export async function runPort(opts: PortOptions, io: CliIO): Promise<number> {
  if ((opts.spec === undefined) === (opts.remove === undefined))
    throw new UsageError('bottle port needs either [ADDR:]HOST_PORT:BOTTLE_PORT or --remove HOST_PORT');
  const port = opts.spec !== undefined ? publishedPorts([opts.spec])[0] : undefined;
  const removing = opts.remove !== undefined ? hostPortArg(opts.remove) : undefined;
  const identity = await checkIdentityArg(opts.identity, { manifestPath: opts.manifestPath });
  const session = await openSession({ needWorker: false });
  try {
    if (!(await session.log.exists(identity))) throw new RuntimeFailure(`no such bottle: ${identity}`);
    const { state } = await currentState(session.log, identity);
    if (stateName(state) !== 'running')
      throw new RuntimeFailure(`${identity} is ${bottleStatus(state)}; only a running bottle's ports can change`);
    return port
      ? await publish(session, identity, state, port, io)
      : await unpublish(session, identity, state, removing!, io);
  } finally {
    await session.close();
  }
}

const progress = (io: CliIO, identity: string) => (ev: LifecycleEvent) => io.stderr(`  ${describeEvent(ev, identity)}`);
const ended = (ev: LifecycleEvent) =>
  ['bottle.preserved', 'bottle.cleaned', 'bottle.failed', 'agent.exited'].includes(ev.type);

async function publish(session: Session, identity: string, state: BottleState, port: PortSpec, io: CliIO) {
  const taken = state.context.ports.find((p) => p.host_port === port.host_port);
  if (taken)
    throw new RuntimeFailure(
      `host port ${port.host_port} is already published by ${identity} (${formatPortSpec(taken)})`,
    );
  const command = { type: 'port.publish_requested', data: { ...port, by: operator() } } as const;
  if (!accepts(state, command))
    throw new RuntimeFailure(`${identity} does not take a port now (${bottleStatus(state)})`);
  if (state.context.plan) await checkPortsFree(session.redis, state.context.plan.host, [port]);
  if (isExposedAddress(port.address))
    io.stderr(`warning: ${port.address} makes the port reachable from other machines`);
  const samePort = (ev: LifecycleEvent) =>
    (ev.type === 'port.published' || ev.type === 'port.publish_failed') && ev.data.host_port === port.host_port;
  const end = await commandAndFollow(
    session,
    identity,
    command,
    progress(io, identity),
    (ev) => samePort(ev) || ended(ev),
  );
  if (end?.type === 'port.published') {
    io.stdout(`published ${port.address}:${port.host_port} -> ${identity} port ${port.bottle_port}`);
    return 0;
  }
  if (end?.type === 'port.publish_failed') throw new RuntimeFailure(visibleText(end.data.error));
  throw new RuntimeFailure(`${identity} stopped before the port was published`);
}

async function unpublish(session: Session, identity: string, state: BottleState, hostPort: number, io: CliIO) {
  if (!state.context.ports.some((p) => p.host_port === hostPort))
    throw new RuntimeFailure(`host port ${hostPort} is not published by ${identity} (see bottle ports ${identity})`);
  const command = { type: 'port.unpublish_requested', data: { host_port: hostPort, by: operator() } } as const;
  const samePort = (ev: LifecycleEvent) => ev.type === 'port.unpublished' && ev.data.host_port === hostPort;
  const end = await commandAndFollow(
    session,
    identity,
    command,
    progress(io, identity),
    (ev) => samePort(ev) || ended(ev),
  );
  if (end?.type !== 'port.unpublished') throw new RuntimeFailure(`${identity} stopped; its ports closed with it`);
  io.stdout(`closed host port ${hostPort} of ${identity}`);
  return 0;
}
