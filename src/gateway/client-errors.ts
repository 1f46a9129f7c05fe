import type { Server } from 'node:http';
import type { GatewayContext } from './context.js';
import { writeJsonAndClose } from './responses.js';

/**
 * Requests Node's HTTP parser refuses before any handler runs. Oversized
 * headers are a policy decision (max_header_bytes) and are reported as one;
 * other parse errors are answered 400 and reported as bad_request. Sockets
 * that merely reset are not decisions and are dropped quietly.
 */
export function installClientErrorHandler(ctx: GatewayContext, server: Server): void {
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    const code = err.code ?? '';
    if (code === 'HPE_HEADER_OVERFLOW') {
      ctx.decisions.denied({ host: null, port: null, method: null }, 'header_too_large');
      writeJsonAndClose(socket, 431, {
        error: 'header_too_large',
        max_header_bytes: ctx.config.limits.max_header_bytes,
      });
      return;
    }
    if (code.startsWith('HPE_')) {
      ctx.decisions.denied({ host: null, port: null, method: null }, 'bad_request');
      writeJsonAndClose(socket, 400, { error: 'bad_request', detail: 'malformed HTTP request' });
      return;
    }
    socket.destroy();
  });
}
