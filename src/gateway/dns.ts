import type { RemoteInfo, Socket } from 'node:dgram';
import type { GatewayContext } from './context.js';
import { listenUdp } from './udp-listener.js';

/**
 * The agent's DNS server (its container's `Dns` points here): it answers
 * every query REFUSED and records it as a denied egress attempt, so a lookup
 * the agent makes itself shows up in `bottle events`. The agent never needs
 * a name resolved: the gateway resolves names for the requests it proxies.
 */

const HEADER_BYTES = 12;
const RCODE_REFUSED = 5;
const MAX_NAME_BYTES = 255;

export interface DnsQuestion {
  id: number;
  /** The queried name in presentation form, bytes outside printable ASCII escaped as `\DDD`. */
  name: string;
  /** The question section as received, echoed in the answer. */
  question: Buffer;
  flags: number;
}

/** The first question of a DNS query; undefined for anything that is not a well-formed query. */
export function parseDnsQuery(packet: Buffer): DnsQuestion | undefined {
  if (packet.length < HEADER_BYTES) return undefined;
  const flags = packet.readUInt16BE(2);
  const isResponse = (flags & 0x8000) !== 0;
  if (isResponse || packet.readUInt16BE(4) < 1) return undefined;
  const labels: string[] = [];
  let offset = HEADER_BYTES;
  let nameBytes = 0;
  for (;;) {
    if (offset >= packet.length) return undefined;
    const length = packet[offset];
    // A question's name is never compressed; a pointer or reserved label type is malformed here.
    if (length > 63) return undefined;
    offset += 1;
    if (length === 0) break;
    nameBytes += length + 1;
    if (nameBytes > MAX_NAME_BYTES || offset + length > packet.length) return undefined;
    labels.push(presentLabel(packet.subarray(offset, offset + length)));
    offset += length;
  }
  const questionEnd = offset + 4; // QTYPE, QCLASS
  if (questionEnd > packet.length) return undefined;
  return {
    id: packet.readUInt16BE(0),
    name: labels.length === 0 ? '.' : labels.join('.'),
    question: packet.subarray(HEADER_BYTES, questionEnd),
    flags,
  };
}

/** RFC 1035 presentation form: printable bytes as they are, `.` and `\` escaped, the rest as `\DDD`. */
function presentLabel(label: Buffer): string {
  let text = '';
  for (const byte of label) {
    if (byte === 0x2e || byte === 0x5c) text += `\\${String.fromCharCode(byte)}`;
    else if (byte > 0x20 && byte < 0x7f) text += String.fromCharCode(byte);
    else text += `\\${String(byte).padStart(3, '0')}`;
  }
  return text;
}

/** REFUSED, with the query's id, opcode and question, no records. */
export function refusedAnswer(query: DnsQuestion): Buffer {
  const header = Buffer.alloc(HEADER_BYTES);
  header.writeUInt16BE(query.id, 0);
  const opcodeAndRecursion = query.flags & 0x7900; // opcode and RD from the query
  header.writeUInt16BE(0x8000 | opcodeAndRecursion | RCODE_REFUSED, 2);
  header.writeUInt16BE(1, 4);
  return Buffer.concat([header, query.question]);
}

/** Binds the refusing DNS server on UDP `host:port`; resolves once it listens. */
export function startDnsRefuser(ctx: GatewayContext, host: string, port: number): Promise<Socket> {
  const refuse = (packet: Buffer, from: RemoteInfo, socket: Socket) => {
    const query = parseDnsQuery(packet);
    if (!query) return;
    // A lookup loop must not flood the event log: over the budget the query is still refused, unrecorded.
    // A name can carry a secret in its labels: recorded by class and fingerprint, never as looked up.
    const host = ctx.scanner?.redactText?.(query.name) ?? query.name;
    if (ctx.dnsLimiter.tryTake()) ctx.decisions.denied({ host, port: 53, method: 'DNS' }, 'dns_lookup');
    socket.send(refusedAnswer(query), from.port, from.address);
  };
  return listenUdp(host, port, refuse, ctx.log, 'dns');
}
