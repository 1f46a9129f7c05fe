import type Docker from 'dockerode';
import { z } from 'zod';
import { LineSplitter, parseJsonLine } from './logs.js';

/**
 * Docker's "network connect" events, as a signal that a starting container
 * has its address on a network. Docker allocates a container's addresses at
 * the very beginning of its start (a connect made while the container is only
 * created emits no event), well before the start call returns.
 */

const ConnectEventSchema = z.object({
  Type: z.literal('network'),
  Action: z.literal('connect'),
  Actor: z.object({ Attributes: z.object({ container: z.string() }).passthrough() }),
});

export interface AttachmentWatch {
  /** Resolves once the container has joined the network; never rejects (a lost stream just never resolves). */
  attached: Promise<void>;
  close(): void;
}

/**
 * Watches for `container` (an id) joining `network` (a name). Start it before
 * the container starts: events are read from a second before the call, so one
 * that happens while the stream is being opened is not missed.
 */
export async function watchAttachment(docker: Docker, opts: { network: string; container: string }): Promise<AttachmentWatch> {
  const since = (Date.now() - 1000) / 1000; // Docker takes fractional seconds
  const stream = (await docker.getEvents({ since, filters: { type: ['network'], event: ['connect'], network: [opts.network] } })) as unknown as NodeJS.ReadableStream & {
    destroy(): void;
  };
  const lines = new LineSplitter();
  const attached = new Promise<void>((resolve) => {
    stream.on('data', (chunk: Buffer) => {
      if (lines.push(chunk).some((line) => parseJsonLine(ConnectEventSchema, line)?.Actor.Attributes.container === opts.container)) resolve();
    });
    stream.on('error', () => undefined);
  });
  return { attached, close: () => stream.destroy() };
}
