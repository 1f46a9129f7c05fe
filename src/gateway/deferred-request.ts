import type { ClientRequest } from 'node:http';
import { Writable } from 'node:stream';

/**
 * The upstream side of a forwarded request, opened only once the scanned
 * body yields its first bytes or ends: a body refused in its first chunk
 * (a canary in a small POST) then costs the upstream not even a connection,
 * where opening at admission would have connected before the scan spoke.
 * Writes keep the request's backpressure; destroying it before it opened
 * opens nothing.
 */
export function deferredRequest(open: () => ClientRequest): Writable {
  let request: ClientRequest | undefined;
  const opened = (): ClientRequest => (request ??= open());
  return new Writable({
    // Finishing the body is not the end of the exchange: the response is still to come on the request.
    autoDestroy: false,
    write(chunk: Buffer, _encoding, callback) {
      if (opened().write(chunk)) callback();
      else request!.once('drain', () => callback());
    },
    final(callback) {
      opened().end(() => callback());
    },
    destroy(err, callback) {
      request?.destroy();
      callback(err);
    },
  });
}
