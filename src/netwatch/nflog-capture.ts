import type { NetwatchProtocol } from '../shared/netwatch-report.js';
import type { DirectAttempt } from './protocol.js';

/**
 * Reads the watch's capture: a pcap stream (as `tcpdump -w -` writes it) of
 * link type NFLOG, each record one packet the refusal rule logged. Its bytes
 * are the agent's packets, so every length is checked before it is used.
 */

const PCAP_HEADER_BYTES = 24;
const RECORD_HEADER_BYTES = 16;
const LINKTYPE_NFLOG = 239;
const NFLOG_HEADER_BYTES = 4;
const NFLOG_TLV_HEADER_BYTES = 4;
const NFULA_PAYLOAD = 9;
const AF_INET = 2;
/** Far above any snap length the watch asks for: a record claiming more is a broken stream. */
const MAX_RECORD_BYTES = 1 << 16;

export class CaptureFormatError extends Error {}

/** Splits a pcap byte stream into records; the first bytes must be the file header. */
export class PcapRecords {
  private buffered: Buffer = Buffer.alloc(0);
  private littleEndian: boolean | undefined;

  /** The record payloads completed by this chunk. */
  push(chunk: Buffer): Buffer[] {
    this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
    const records: Buffer[] = [];
    if (this.littleEndian === undefined) {
      if (this.buffered.length < PCAP_HEADER_BYTES) return records;
      this.littleEndian = byteOrder(this.buffered);
      const linkType = this.u32(this.buffered, 20) & 0x0fffffff;
      if (linkType !== LINKTYPE_NFLOG) throw new CaptureFormatError(`capture link type ${linkType}, not NFLOG`);
      this.buffered = this.buffered.subarray(PCAP_HEADER_BYTES);
    }
    while (this.buffered.length >= RECORD_HEADER_BYTES) {
      const captured = this.u32(this.buffered, 8);
      if (captured > MAX_RECORD_BYTES) throw new CaptureFormatError(`capture record of ${captured} bytes`);
      if (this.buffered.length < RECORD_HEADER_BYTES + captured) break;
      records.push(this.buffered.subarray(RECORD_HEADER_BYTES, RECORD_HEADER_BYTES + captured));
      this.buffered = this.buffered.subarray(RECORD_HEADER_BYTES + captured);
    }
    return records;
  }

  /** NFLOG's TLV fields are in the capturing machine's byte order, which is the file's. */
  get isLittleEndian(): boolean {
    return this.littleEndian ?? true;
  }

  private u32(buffer: Buffer, offset: number): number {
    return this.littleEndian ? buffer.readUInt32LE(offset) : buffer.readUInt32BE(offset);
  }
}

function byteOrder(header: Buffer): boolean {
  const magic = header.readUInt32LE(0);
  // Microsecond and nanosecond pcap magics, read in either byte order.
  if (magic === 0xa1b2c3d4 || magic === 0xa1b23c4d) return true;
  if (magic === 0xd4c3b2a1 || magic === 0x4d3cb2a1) return false;
  throw new CaptureFormatError('not a pcap stream');
}

/** The logged packet inside one NFLOG record (its payload attribute); undefined when it has none. */
export function nflogPayload(record: Buffer, littleEndian: boolean): Buffer | undefined {
  if (record.length < NFLOG_HEADER_BYTES || record[0] !== AF_INET) return undefined;
  let offset = NFLOG_HEADER_BYTES;
  while (offset + NFLOG_TLV_HEADER_BYTES <= record.length) {
    const length = littleEndian ? record.readUInt16LE(offset) : record.readUInt16BE(offset);
    const type = (littleEndian ? record.readUInt16LE(offset + 2) : record.readUInt16BE(offset + 2)) & 0x7fff;
    if (length < NFLOG_TLV_HEADER_BYTES || offset + length > record.length) return undefined;
    if (type === NFULA_PAYLOAD) return record.subarray(offset + NFLOG_TLV_HEADER_BYTES, offset + length);
    offset += (length + 3) & ~3;
  }
  return undefined;
}

const PROTOCOLS: Record<number, NetwatchProtocol> = { 1: 'icmp', 6: 'tcp', 17: 'udp' };

/** Where an IPv4 packet was headed; undefined for anything that is not a readable IPv4 packet. */
export function attemptOf(packet: Buffer): (DirectAttempt & { sourcePort: number | null }) | undefined {
  if (packet.length < 20 || packet[0] >> 4 !== 4) return undefined;
  const headerBytes = (packet[0] & 0x0f) * 4;
  if (headerBytes < 20 || packet.length < headerBytes) return undefined;
  const protocol = PROTOCOLS[packet[9]] ?? 'other';
  const host = `${packet[16]}.${packet[17]}.${packet[18]}.${packet[19]}`;
  const fragmentOffset = packet.readUInt16BE(6) & 0x1fff;
  const hasPorts = (protocol === 'tcp' || protocol === 'udp') && fragmentOffset === 0;
  if (!hasPorts || packet.length < headerBytes + 4) return { protocol, host, port: null, sourcePort: null };
  return {
    protocol,
    host,
    port: packet.readUInt16BE(headerBytes + 2),
    sourcePort: packet.readUInt16BE(headerBytes),
  };
}
