import type { Socket } from 'node:dgram';
import { createHash, timingSafeEqual } from 'node:crypto';
import { NetwatchReportSchema } from '../shared/netwatch-report.js';
import type { GatewayContext } from './context.js';
import { listenUdp } from './udp-listener.js';

/**
 * Receives the network watch's reports (src/netwatch): each datagram is one
 * packet the agent sent off its network, refused in the agent's namespace,
 * recorded here as an egress.denied decision (`direct_connection`). Only a
 * report carrying the watch's token counts; the agent, which shares the
 * watch's address, can reach this port but does not know the token.
 */

const MAX_REPORT_BYTES = 512;

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

/** Binds the receiver on UDP `host:port`; resolves once it listens. */
export function startNetwatchReceiver(ctx: GatewayContext, host: string, port: number, token: string): Promise<Socket> {
  const expected = digest(token);
  let forgedReported = false;
  const record = (packet: Buffer) => {
    if (packet.length > MAX_REPORT_BYTES) return;
    let report;
    try {
      report = NetwatchReportSchema.safeParse(JSON.parse(packet.toString('utf8')));
    } catch {
      return;
    }
    if (!report.success) return;
    if (!timingSafeEqual(digest(report.data.token), expected)) {
      if (!forgedReported) ctx.log('netwatch: ignoring reports without the watch token');
      forgedReported = true;
      return;
    }
    const { protocol, host: target, port: targetPort } = report.data;
    // A connect loop must not flood the event log: over the budget the packet is still refused, unrecorded.
    if (!ctx.directLimiter.tryTake()) return;
    ctx.decisions.denied({ host: target, port: targetPort, method: protocol.toUpperCase() }, 'direct_connection');
  };
  return listenUdp(host, port, record, ctx.log, 'netwatch');
}
