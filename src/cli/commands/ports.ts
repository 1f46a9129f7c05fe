import type { Command } from 'commander';
import { currentState } from '../../engine/bottle-log.js';
import { bottleStatus } from '../../machines/index.js';
import { RuntimeFailure } from '../../shared/errors.js';
import type { CliIO } from '../../shared/io.js';
import { isExposedAddress } from '../../shared/port-spec.js';
import { terminalSafeJson } from '../../shared/visible-text.js';
import { checkIdentityArg } from '../identity-arg.js';
import { formatOption, type CliContext } from '../program.js';
import { openSession } from '../session.js';
import { tableLines } from '../table.js';

export function register(program: Command, cli: CliContext): void {
  program
    .command('ports')
    .description("a bottle's published ports")
    .argument('<identity>')
    .addOption(formatOption())
    .action((identity: string, o: { format: 'text' | 'json' }) =>
      cli.run(() => runPorts({ identity, format: o.format, manifestPath: cli.manifestPath() }, cli.io)),
    );
}

/** The ports the bottle's log says are open: published this run and not yet closed or torn down. */
export async function runPorts(
  opts: { identity: string; format: 'text' | 'json'; manifestPath?: string },
  io: CliIO,
): Promise<number> {
  const identity = await checkIdentityArg(opts.identity, { manifestPath: opts.manifestPath });
  const session = await openSession({ needWorker: false });
  try {
    if (!(await session.log.exists(identity))) throw new RuntimeFailure(`no such bottle: ${identity}`);
    const { state } = await currentState(session.log, identity);
    const ports = state.context.ports.map(({ address, host_port, bottle_port }) => ({
      address,
      host_port,
      bottle_port,
    }));
    if (opts.format === 'json') {
      io.stdout(terminalSafeJson(ports));
      return 0;
    }
    if (ports.length === 0) {
      io.stdout(`${identity} publishes no ports (${bottleStatus(state)})`);
      return 0;
    }
    const rows = ports.map((p) => [
      `${p.address}:${p.host_port}`,
      String(p.bottle_port),
      isExposedAddress(p.address) ? 'other machines too' : 'this machine only',
    ]);
    for (const line of tableLines(['HOST', 'BOTTLE PORT', 'REACHABLE FROM'], rows)) io.stdout(line);
    return 0;
  } finally {
    await session.close();
  }
}
