import type { Command } from 'commander';
import { bottleStatus } from '../../machines/index.js';
import { RuntimeFailure } from '../../shared/errors.js';
import { agentOutput } from '../attach.js';
import { reachesBottleDocker, refuseElsewhere } from '../bottle-docker.js';
import { checkIdentityArg } from '../identity-arg.js';
import { whileWatchingHost } from '../host-watch.js';
import type { CliIO } from '../../shared/io.js';
import { openSession } from '../session.js';
import { agentOf, notRunningHint } from './attach.js';
import type { CliContext } from '../program.js';

export interface LogsOptions {
  identity: string;
  follow: boolean;
  manifestPath?: string;
}

export function register(program: Command, cli: CliContext): void {
  program
    .command('logs')
    .description("the agent's own output (its terminal), while its container exists")
    .argument('<identity>')
    .option('--follow', 'keep printing until the agent exits', false)
    .action((identity: string, flags: Pick<LogsOptions, 'follow'>) =>
      cli.run(() => runLogs({ ...flags, identity, manifestPath: cli.manifestPath() }, cli.io)),
    );
}

/**
 * `bottle logs <identity> [--follow]`: what the agent wrote to its terminal,
 * as Docker kept it while the agent container exists. It is untrusted
 * output: on a terminal it is passed through as `docker logs` would (it is
 * the agent's own screen), anywhere else its control characters are
 * neutralised (src/cli/attach.ts, OutputNeutraliser).
 */
export async function runLogs(opts: LogsOptions, io: CliIO): Promise<number> {
  const identity = await checkIdentityArg(opts.identity, { manifestPath: opts.manifestPath });
  const session = await openSession({ needWorker: false });
  let agent: Awaited<ReturnType<typeof agentOf>>;
  let shown: Awaited<ReturnType<typeof agentOutput>>;
  try {
    agent = await agentOf(session, identity);
    const plan = agent.state.context.plan;
    if (plan && !(await reachesBottleDocker(session.redis, plan.host))) refuseElsewhere(identity, plan, 'logs');
    const output = () => agentOutput(agent.container, { follow: opts.follow, raw: io.isTTY });
    // Following, the user is told when no worker serves the bottle's host (the agent may run on regardless).
    shown = opts.follow ? await whileWatchingHost(session, identity, (l) => io.stderr(l), output) : await output();
  } finally {
    await session.close();
  }
  if (shown === 'gone') {
    const status = bottleStatus(agent.state);
    const hint = notRunningHint(identity, agent.state);
    throw new RuntimeFailure(
      `${identity} is ${status} and its agent container is gone (its output is kept only while it runs)${hint}`,
    );
  }
  return 0;
}
