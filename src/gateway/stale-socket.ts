import type { ClientRequest, IncomingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';

/**
 * A kept-alive upstream socket can be closed by the server just as the
 * gateway sends a request on it. Such a request is sent once more, on a new
 * connection, only when that cannot do anything the first try did not:
 * its method is idempotent and it has no body (so nothing was streamed up
 * that could not be sent again), it failed on a reused socket with a reset
 * or broken pipe, and not one byte of a response arrived.
 */

const RESENDABLE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
const STALE_SOCKET_CODES = new Set(['ECONNRESET', 'EPIPE']);

/** Whether the client's request could be sent twice without harm: idempotent and bodiless. */
export function resendable(method: string | undefined, headers: IncomingHttpHeaders): boolean {
  if (!RESENDABLE_METHODS.has(method ?? '')) return false;
  if (headers['transfer-encoding'] !== undefined) return false;
  return headers['content-length'] === undefined || Number(headers['content-length']) === 0;
}

/**
 * Watches one upstream request; the returned check says whether its failure
 * was a stale reused socket: sent in full on a socket the agent reused, no
 * response byte received, and the error a reset or broken pipe.
 */
export function watchForStaleSocket(request: ClientRequest): (err: Error) => boolean {
  let heard = false;
  const listen = (socket: Socket) => {
    if (!request.reusedSocket) return;
    const onData = () => (heard = true);
    socket.once('data', onData);
    request.once('close', () => socket.off('data', onData));
  };
  // http-proxy announces its request only once the request has its socket.
  if (request.socket) listen(request.socket);
  else request.once('socket', listen);
  request.once('response', () => (heard = true));
  return (err) =>
    request.reusedSocket &&
    !heard &&
    request.writableEnded &&
    STALE_SOCKET_CODES.has((err as NodeJS.ErrnoException).code ?? '');
}
