import cliProgress from 'cli-progress';
import type { Redis } from 'ioredis';
import { progressChannel } from '../engine/progress.js';

/**
 * Image builds report `Step N/M : INSTRUCTION` lines through the worker's
 * progress channel; on a terminal they drive a cli-progress bar (one per
 * build, restarting when a new build's step 1 arrives). Without a terminal
 * nothing is drawn: the lifecycle events already say what happened.
 */
const STEP = /^Step (\d+)\/(\d+) : (.*)$/;

export interface BuildProgressDisplay {
  /** Clears the bar before another line is printed; the next step line draws a new one. */
  pause(): void;
  stop(): void;
}

export function followBuildProgress(
  subscriber: Redis,
  identity: string,
  stream: NodeJS.WriteStream = process.stderr,
): BuildProgressDisplay {
  let bar: cliProgress.SingleBar | undefined;
  const stopBar = () => {
    bar?.stop();
    bar = undefined;
  };
  void subscriber.subscribe(progressChannel(identity)).catch(() => undefined);
  subscriber.on('message', (_channel: string, line: string) => {
    const m = STEP.exec(line.trim());
    if (!m) return;
    const [, step, total, instruction] = m;
    if (!bar || Number(step) === 1) {
      stopBar();
      bar = new cliProgress.SingleBar(
        {
          stream,
          format: '  building image [{bar}] {value}/{total} {instruction}',
          hideCursor: false,
          clearOnComplete: true,
          barsize: 24,
        },
        cliProgress.Presets.shades_classic,
      );
      bar.start(Number(total), 0, { instruction: '' });
    }
    bar.update(Number(step), { instruction: instruction.slice(0, Math.max(10, (stream.columns ?? 80) - 50)) });
  });
  return {
    pause: stopBar,
    stop() {
      stopBar();
      subscriber.disconnect();
    },
  };
}
