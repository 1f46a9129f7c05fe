import type { Command } from 'commander';
import { UsageError } from '../../shared/errors.js';
import type { CliIO } from '../../shared/io.js';
import { visibleText } from '../../shared/visible-text.js';
import { openSession } from '../session.js';
import { runAttach } from './attach.js';
import type { CliContext } from '../program.js';

export function register(program: Command, cli: CliContext): void {
  program
    .command('dashboard')
    .description('live view of bottles, states, pending requests, egress and events')
    .action(() => cli.run(() => runDashboard(cli.io)));
}

/**
 * `bottle dashboard`: a live terminal view (src/cli/dashboard-view.ts).
 *
 * ink decides once, when it is imported, whether to draw live frames: with
 * `CI` or `CONTINUOUS_INTEGRATION` set it keeps every frame back until exit.
 * The dashboard only runs on a terminal, where a live view is the whole point,
 * so those markers are cleared before ink is loaded.
 */
export async function runDashboard(io: CliIO): Promise<number> {
  if (!io.isTTY)
    throw new UsageError('dashboard needs a terminal; use `bottle list` or `bottle events --follow` in scripts');
  delete process.env.CI;
  delete process.env.CONTINUOUS_INTEGRATION;
  const [{ render }, { createElement: h }, { Dashboard }, { AttentionBell }] = await Promise.all([
    import('ink'),
    import('react'),
    import('../dashboard-view.js'),
    import('../dashboard-bell.js'),
  ]);
  const session = await openSession({ needWorker: false });
  try {
    // The bell remembers what was shown before an attach: what was raised meanwhile rings on the way back.
    const bell = new AttentionBell();
    // `t` leaves the view for the selected bottle's terminal; detaching (or its exit) comes back here.
    for (;;) {
      let attachTo: string | undefined;
      const onAttach = (identity: string) => (attachTo = identity);
      const app = render(h(Dashboard, { session, bell, onAttach }));
      await app.waitUntilExit();
      if (attachTo === undefined) return 0;
      try {
        await runAttach({ identity: attachTo }, io);
      } catch (err) {
        io.stderr(`bottle dashboard: ${visibleText(err instanceof Error ? err.message : String(err))}`);
        await new Promise((resolve) => setTimeout(resolve, 1500));
      }
    }
  } finally {
    await session.close();
  }
}
