/**
 * The few parts of `ws` (in node_modules, without published types here) the
 * tests use to speak WebSocket through the gateway.
 */
declare module 'ws' {
  import type { EventEmitter } from 'node:events';
  import type { IncomingMessage } from 'node:http';
  import type { Duplex } from 'node:stream';

  export class WebSocket extends EventEmitter {
    constructor(address: string, options?: { createConnection?: () => Duplex });
    send(data: string | Buffer): void;
    close(): void;
  }

  export class WebSocketServer extends EventEmitter {
    constructor(options: { noServer: true });
    handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, done: (ws: WebSocket) => void): void;
  }
}
