import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { attemptOf, CaptureFormatError, nflogPayload, PcapRecords } from '../../../src/netwatch/nflog-capture.js';
import { RecentAttempts } from '../../../src/netwatch/recent-attempts.js';
import { NETWATCH_CHAIN, netwatchSentinel } from '../../../src/netwatch/protocol.js';
import { refusalRules, sentinelRule } from '../../../src/netwatch/rules.js';

/**
 * A real capture: tcpdump -w - on the NFLOG group of the refusal rules, in a container's network namespace,
 * while it tried a TCP connect to 192.0.2.1:80 and sent a UDP datagram to 192.0.2.9:53.
 */
const FIXTURE = readFileSync(join(import.meta.dirname, '../../fixtures/netwatch/nflog-tcp-udp.pcap'));

function attempts(chunks: Buffer[]) {
  const records = new PcapRecords();
  return chunks.flatMap((chunk) =>
    records.push(chunk).map((record) => {
      const payload = nflogPayload(record, records.isLittleEndian);
      return payload && attemptOf(payload);
    }),
  );
}

describe('reading the watch capture', () => {
  it('finds where each refused packet of a real capture was headed', () => {
    expect(attempts([FIXTURE])).toEqual([
      { protocol: 'tcp', host: '192.0.2.1', port: 80, sourcePort: expect.any(Number) },
      { protocol: 'udp', host: '192.0.2.9', port: 53, sourcePort: expect.any(Number) },
    ]);
  });

  it('gives the same packets however the stream is cut into chunks', () => {
    const whole = attempts([FIXTURE]);
    for (const size of [1, 3, 17, 24, 40, 100]) {
      const chunks: Buffer[] = [];
      for (let i = 0; i < FIXTURE.length; i += size) chunks.push(FIXTURE.subarray(i, i + size));
      expect(attempts(chunks), `chunks of ${size}`).toEqual(whole);
    }
  });

  it('refuses a stream that is not an NFLOG capture', () => {
    const ethernet = Buffer.from(FIXTURE.subarray(0, 24));
    ethernet.writeUInt32LE(1, 20);
    expect(() => new PcapRecords().push(ethernet)).toThrow(CaptureFormatError);
    expect(() => new PcapRecords().push(Buffer.alloc(24, 0x41))).toThrow(/not a pcap stream/);
  });

  it('refuses a record that claims more bytes than any capture of the watch holds', () => {
    const header = Buffer.from(FIXTURE.subarray(0, 24));
    const record = Buffer.alloc(16);
    record.writeUInt32LE(1 << 20, 8);
    expect(() => new PcapRecords().push(Buffer.concat([header, record]))).toThrow(/capture record/);
  });

  it('reads nothing out of a record whose fields overrun it', () => {
    const record = Buffer.from([2, 0, 0, 17, 0xff, 0x00, 9, 0, 0x45]);
    expect(nflogPayload(record, true)).toBeUndefined();
    expect(nflogPayload(Buffer.from([10, 0, 0, 17]), true)).toBeUndefined();
  });

  it('reads an IPv4 packet with options, and has no port for ICMP or a later fragment', () => {
    const packet = Buffer.alloc(28);
    packet[0] = 0x46; // version 4, six words of header
    packet[9] = 6;
    packet.set([203, 0, 113, 7], 16);
    packet.writeUInt16BE(443, 26);
    expect(attemptOf(packet)).toMatchObject({ protocol: 'tcp', host: '203.0.113.7', port: 443 });
    packet[9] = 1;
    expect(attemptOf(packet)).toMatchObject({ protocol: 'icmp', port: null });
    packet[9] = 17;
    packet.writeUInt16BE(0x0010, 6);
    expect(attemptOf(packet)).toMatchObject({ protocol: 'udp', port: null });
    expect(attemptOf(Buffer.from([0x60, 0, 0, 0]))).toBeUndefined();
  });
});

describe('the refusal rules', () => {
  it('let loopback and the egress hops through, then log and refuse everything else', () => {
    const rules = refusalRules(['10.213.7.2', '10.213.7.4']).map((r) => r.join(' '));
    expect(rules).toEqual([
      `-w -F ${NETWATCH_CHAIN}`,
      `-w -A ${NETWATCH_CHAIN} -o lo -j RETURN`,
      `-w -A ${NETWATCH_CHAIN} -d 10.213.7.2/32 -j RETURN`,
      `-w -A ${NETWATCH_CHAIN} -d 10.213.7.4/32 -j RETURN`,
      `-w -A ${NETWATCH_CHAIN} -p tcp -m conntrack --ctstate ESTABLISHED --ctdir REPLY -j RETURN`,
      `-w -A ${NETWATCH_CHAIN} -j NFLOG --nflog-group 17 --nflog-threshold 1 --nflog-size 128`,
      `-w -A ${NETWATCH_CHAIN} -p tcp -j REJECT --reject-with tcp-reset`,
      `-w -A ${NETWATCH_CHAIN} -j REJECT --reject-with icmp-net-unreachable`,
    ]);
  });

  it('answer the sentinel first, with an error no other refusal gives, before it is logged', () => {
    expect(sentinelRule({ host: '10.213.7.1', port: 9 }).join(' ')).toBe(
      `-w -I ${NETWATCH_CHAIN} 1 -d 10.213.7.1/32 -p tcp --dport 9 -j REJECT --reject-with icmp-net-prohibited`,
    );
  });

  it("take as the sentinel the bottle network's own bridge address, which nobody holds", () => {
    expect(netwatchSentinel('10.213.7.0/29')).toEqual({ host: '10.213.7.1', port: 9 });
  });
});

describe('RecentAttempts', () => {
  it('reports a key once within the window, again after it, and forgets the oldest past its capacity', () => {
    let now = 0;
    const recent = new RecentAttempts(1000, 2, () => now);
    expect(recent.isNew('a')).toBe(true);
    expect(recent.isNew('a')).toBe(false);
    now = 1000;
    expect(recent.isNew('a')).toBe(true);
    expect(recent.isNew('b')).toBe(true);
    expect(recent.isNew('c')).toBe(true);
    expect(recent.isNew('a')).toBe(true);
  });
});
