import { createSocket } from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { startGateway, type RunningGateway } from '../../../src/gateway/gateway.js';
import type { GatewayLine } from '../../../src/gateway/protocol.js';

const TOKEN = 'a'.repeat(64);

function send(port: number, payload: unknown): Promise<void> {
  const socket = createSocket('udp4');
  const bytes = Buffer.isBuffer(payload) ? payload : Buffer.from(JSON.stringify(payload));
  return new Promise((resolve, reject) =>
    socket.send(bytes, port, '127.0.0.1', (err) => {
      socket.close();
      if (err) reject(err);
      else resolve();
    }),
  );
}

/** Datagrams on loopback arrive in order: a marker sent last has been handled once it is recorded. */
async function settle(port: number, lines: GatewayLine[]): Promise<void> {
  const marker = { token: TOKEN, protocol: 'tcp', host: '198.51.100.254', port: 1 };
  await send(port, marker);
  const deadline = Date.now() + 5000;
  while (!lines.some((l) => l.t === 'egress' && l.host === marker.host)) {
    if (Date.now() > deadline) throw new Error('the marker report was never recorded');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe("the gateway's network watch receiver (loopback)", () => {
  let gateway: RunningGateway | undefined;
  let lines: GatewayLine[];
  let logged: string[];
  afterEach(async () => {
    await gateway?.close();
    gateway = undefined;
  });

  async function start(): Promise<number> {
    lines = [];
    logged = [];
    gateway = await startGateway(
      { identity: 'nw-ab12c', proxy_port: 0, credential_port: 0, netwatch_port: 0 },
      {},
      { onDecision: (l) => lines.push(l), log: (m) => logged.push(m), netwatchToken: TOKEN, now: () => 0 },
    );
    return gateway.netwatchPort!;
  }

  it('records a report signed with the watch token as a denied direct connection', async () => {
    const port = await start();
    await send(port, { token: TOKEN, protocol: 'udp', host: '192.0.2.9', port: 53 });
    await send(port, { token: TOKEN, protocol: 'icmp', host: '192.0.2.10', port: null });
    await settle(port, lines);
    expect(lines.slice(0, 2)).toEqual([
      expect.objectContaining({ decision: 'denied', host: '192.0.2.9', port: 53, method: 'UDP' }),
      expect.objectContaining({ decision: 'denied', host: '192.0.2.10', method: 'ICMP' }),
    ]);
    expect(lines.slice(0, 2).map((l) => (l.t === 'egress' ? l.reason : ''))).toEqual([
      'direct_connection',
      'direct_connection',
    ]);
    expect(lines[1]).not.toHaveProperty('port');
  });

  it('ignores a forged report (wrong token), a malformed one and one with extra fields, saying so once', async () => {
    const port = await start();
    await send(port, { token: 'b'.repeat(64), protocol: 'tcp', host: '192.0.2.1', port: 80 });
    await send(port, { token: 'short', protocol: 'tcp', host: '192.0.2.1', port: 80 });
    await send(port, { token: TOKEN, protocol: 'tcp', host: 'evil.test', port: 80 });
    await send(port, { token: TOKEN, protocol: 'tcp', host: '192.0.2.1', port: 80, reason: 'allowlisted' });
    await send(port, Buffer.from('\u001b[2Jnot json'));
    await settle(port, lines);
    expect(lines).toHaveLength(1);
    expect(logged.filter((m) => m.includes('without the watch token'))).toHaveLength(1);
  });

  it('records at most its budget of a flood; the rest stay refused, unrecorded', async () => {
    const port = await start();
    for (let i = 0; i < 100; i++) await send(port, { token: TOKEN, protocol: 'tcp', host: '192.0.2.1', port: i });
    const deadline = Date.now() + 5000;
    while (lines.length < 60 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    // Whatever is still on its way must not be recorded either.
    await new Promise((r) => setTimeout(r, 200));
    expect(lines.length).toBe(60);
  });

  it('refuses to start with a report port but no token', async () => {
    await expect(
      startGateway({ identity: 'nw-ab12c', proxy_port: 0, credential_port: 0, netwatch_port: 0 }, {}, {}),
    ).rejects.toThrow(/no netwatch token/);
  });
});
