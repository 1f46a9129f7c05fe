import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { openQueue } from '../engine/queues.js';

/** The queues a worker enqueues to, opened on first use over one connection and closed together. */
export class QueuePool {
  private readonly queues = new Map<string, Queue>();

  constructor(private readonly connection: Redis) {}

  readonly byName = (name: string): Queue => {
    let queue = this.queues.get(name);
    if (!queue) {
      queue = openQueue(this.connection, name);
      this.queues.set(name, queue);
    }
    return queue;
  };

  async close(): Promise<void> {
    await Promise.all([...this.queues.values()].map((q) => q.close()));
    this.connection.disconnect();
  }
}
