import { UnrecoverableError } from 'bullmq';
import { describe, expect, it } from 'vitest';
import type { EventStoreView } from '../../../src/effects/types.js';
import { hostTaskRunner } from '../../../src/worker/host-task-runner.js';

const store: EventStoreView = { id: 'store-1', isLive: async () => false, imagesInUse: async () => [] };

describe('a host task', () => {
  it('is refused once, without retries, by a worker that runs none', async () => {
    const run = hostTaskRunner(undefined, store, () => undefined);
    const refused = run({ task: 'cleanup', dry_run: false });
    await expect(refused).rejects.toBeInstanceOf(UnrecoverableError);
    await expect(refused).rejects.toThrow('this worker runs no host tasks (asked for cleanup)');
  });

  it("runs against this worker's store, said in the log, and its report is checked", async () => {
    const lines: string[] = [];
    const asked: unknown[] = [];
    const report = { dry_run: true, containers: [{ name: 'old-gw', why: 'not-live' }], networks: [], state: [] };
    const cleanup = async (task: unknown, view: EventStoreView) => {
      asked.push([task, view.id]);
      return report as never;
    };
    const run = hostTaskRunner({ cleanup }, store, (l) => lines.push(l));
    expect(await run({ task: 'cleanup', dry_run: true })).toEqual({
      ...report,
      images: [],
      images_skipped: [],
      freed_bytes: 0,
    });
    expect(asked).toEqual([[{ task: 'cleanup', dry_run: true }, 'store-1']]);
    expect(lines).toEqual(['host task cleanup (dry run)']);
  });
});
