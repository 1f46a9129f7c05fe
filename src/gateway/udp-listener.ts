import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';

/**
 * A UDP socket bound on `host:port`, resolved once it listens. A bind error
 * rejects; errors after that are the listener's own to log (`what` names it).
 */
export function listenUdp(
  host: string,
  port: number,
  onMessage: (packet: Buffer, from: RemoteInfo, socket: Socket) => void,
  log: (message: string) => void,
  what: string,
): Promise<Socket> {
  const socket = createSocket({ type: 'udp4' });
  socket.on('message', (packet: Buffer, from: RemoteInfo) => onMessage(packet, from, socket));
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(port, host, () => {
      socket.off('error', reject);
      socket.on('error', (err) => log(`${what}: ${err.message}`));
      resolve(socket);
    });
  });
}
