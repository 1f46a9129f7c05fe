import { connect, type AddressInfo } from 'node:net';
import { AgentProtocol, utils, type ParsedKey } from 'ssh2';
import { afterEach, describe, expect, it } from 'vitest';
import { sshEntries } from '../../../src/effects/docker/provision.js';
import { gatewayConfigFor } from '../../../src/effects/start-gateway.js';
import { validateGatewayFiles } from '../../../src/gateway/config.js';
import { createSshAgentServer, loadSshKeys, SshKeyError, type SshAgentServer } from '../../../src/gateway/ssh-agent.js';
import { startGateway } from '../../../src/gateway/gateway.js';
import { SSH_AGENT_BRIDGE_PATH, sshKeyId, withSshAgentBridge } from '../../../src/plan/ssh-config.js';

function keyPair(type: 'ed25519' | 'rsa', passphrase?: string): { private: string; public: string } {
  const protection = passphrase ? { passphrase, cipher: 'aes256-ctr', rounds: 4 } : {};
  // The typings cannot express "optionally encrypted"; ssh2 accepts both shapes.
  const generate = utils.generateKeyPairSync as (type: string, opts: object) => { private: string; public: string };
  const pair = generate(type, type === 'rsa' ? { bits: 2048, ...protection } : protection);
  return { private: pair.private, public: pair.public };
}

describe('the gateway ssh-agent', () => {
  let server: SshAgentServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  async function agentClient(keys: Record<string, string>) {
    server = createSshAgentServer(loadSshKeys(Object.keys(keys), keys), () => {});
    await new Promise<void>((resolve) => server!.server.listen(0, '127.0.0.1', resolve));
    const socket = connect((server.server.address() as AddressInfo).port, '127.0.0.1');
    const client = new AgentProtocol(true);
    socket.pipe(client).pipe(socket);
    return { client, socket };
  }

  it('lists the held public keys and signs with them; the signature verifies against the public key', async () => {
    const ed = keyPair('ed25519');
    const rsa = keyPair('rsa');
    const { client, socket } = await agentClient({ [sshKeyId(0)]: ed.private, [sshKeyId(1)]: rsa.private });
    const identities = await new Promise<ParsedKey[]>((resolve, reject) =>
      client.getIdentities((err, keys) => (err ? reject(err) : resolve(keys ?? []))),
    );
    expect(identities.map((k) => k.type).sort()).toEqual(['ssh-ed25519', 'ssh-rsa']);
    // The agent hands out public keys only.
    expect(identities.every((k) => !k.isPrivateKey())).toBe(true);

    const data = Buffer.from('session data to sign');
    for (const [key, pub, options] of [
      [identities.find((k) => k.type === 'ssh-ed25519')!, ed.public, {}],
      [identities.find((k) => k.type === 'ssh-rsa')!, rsa.public, { hash: 'sha256' as const }],
    ] as const) {
      const signature = await new Promise<Buffer>((resolve, reject) =>
        client.sign(key, data, options, (err, sig) => (err ? reject(err) : resolve(sig!))),
      );
      const parsed = utils.parseKey(pub) as ParsedKey;
      expect(parsed.verify(data, signature, 'hash' in options ? options.hash : undefined)).toBe(true);
    }
    socket.destroy();
  });

  it("answers an unsupported extension (OpenSSH's session-bind) with a failure and stays in step", async () => {
    server = createSshAgentServer(loadSshKeys([sshKeyId(0)], { [sshKeyId(0)]: keyPair('ed25519').private }), () => {});
    await new Promise<void>((resolve) => server!.server.listen(0, '127.0.0.1', resolve));
    const socket = connect((server.server.address() as AddressInfo).port, '127.0.0.1');
    const extensionBody = Buffer.concat([Buffer.from([27]), Buffer.alloc(40, 7)]);
    const extension = Buffer.concat([Buffer.from([0, 0, 0, extensionBody.length]), extensionBody]);
    const identities = Buffer.from([0, 0, 0, 1, 11]);
    const received: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => received.push(chunk));
    socket.write(Buffer.concat([extension, identities]));
    const deadline = Date.now() + 5000;
    while (Buffer.concat(received).length < 9 + 4 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const reply = Buffer.concat(received);
    // First the failure for the extension, then the identities answer with one key.
    expect([...reply.subarray(0, 5)]).toEqual([0, 0, 0, 1, 5]);
    expect(reply[9]).toBe(12);
    expect(reply.readUInt32BE(10)).toBe(1);
    socket.destroy();
  });

  it('refuses to sign with a key it does not hold', async () => {
    const { client, socket } = await agentClient({ [sshKeyId(0)]: keyPair('ed25519').private });
    const stranger = utils.parseKey(keyPair('ed25519').public) as ParsedKey;
    await expect(
      new Promise((resolve, reject) =>
        client.sign(stranger, Buffer.from('x'), (err, sig) => (err ? reject(err) : resolve(sig))),
      ),
    ).rejects.toThrow(/failure/);
    socket.destroy();
  });

  it('refuses encrypted and public keys at load, naming the key id only', () => {
    const encrypted = keyPair('ed25519', 'secret words');
    expect(() => loadSshKeys(['ssh-key-0'], { 'ssh-key-0': encrypted.private })).toThrow(SshKeyError);
    expect(() => loadSshKeys(['ssh-key-0'], { 'ssh-key-0': encrypted.private })).toThrow(/ssh-key-0 .*passphrase/);
    expect(() => loadSshKeys(['ssh-key-0'], { 'ssh-key-0': keyPair('ed25519').public })).toThrow(/public key/);
  });

  it('is started by the gateway when its config names keys, on the listen address', async () => {
    const key = keyPair('ed25519');
    const config = {
      identity: 'unit-ssh',
      proxy_port: 0,
      credential_port: 0,
      ssh_agent: { port: 0, keys: [sshKeyId(0)] },
    };
    expect(() => validateGatewayFiles(config, {})).toThrow(/no secret for ssh key\(s\): ssh-key-0/);
    const gateway = await startGateway(config, { [sshKeyId(0)]: key.private }, { log: () => {} });
    try {
      expect(gateway.sshAgentPort).toEqual(expect.any(Number));
    } finally {
      await gateway.close();
    }
    const without = await startGateway(
      { identity: 'unit-ssh', proxy_port: 0, credential_port: 0 },
      {},
      { log: () => {} },
    );
    expect(without.sshAgentPort).toBeUndefined();
    await without.close();
  });
});

describe('the agent side of ssh', () => {
  const targets = { home: '/home/node', promptTarget: '', skillsDir: '', sshDir: '/home/node/.ssh', claudeDir: '' };

  it('writes ~/.ssh/config through the gateway and the bridge script, and no key', () => {
    const entries = sshEntries([{ Host: 'git.test' }], targets, '10.9.8.2');
    const files = entries.filter((e) => e.type === 'file');
    expect(files.map((e) => e.path).sort()).toEqual(['/home/node/.ssh/config', SSH_AGENT_BRIDGE_PATH].sort());
    const config = files.find((e) => e.path.endsWith('/config'))!;
    expect(config).toMatchObject({ mode: 0o600, uid: 1000 });
    expect(String(config.type === 'file' && config.content)).toContain(
      'ProxyCommand nc -X connect -x 10.9.8.2:3128 %h %p',
    );
    const bridge = files.find((e) => e.path === SSH_AGENT_BRIDGE_PATH)!;
    expect(bridge).toMatchObject({ mode: 0o755, uid: 0, gid: 0 });
    expect(String(bridge.type === 'file' && bridge.content)).toContain('TCP:10.9.8.2:3130');
    expect(entries.some((e) => e.type === 'host-file')).toBe(false);
    expect(sshEntries([], targets, '10.9.8.2')).toEqual([]);
  });

  it('runs the bridge after the init program and before the image entrypoint', () => {
    const launch = withSshAgentBridge({ entrypoint: ['/init', '/image-entry'], cmd: ['claude'] });
    expect(launch).toEqual({ entrypoint: ['/init', SSH_AGENT_BRIDGE_PATH, '/image-entry'], cmd: ['claude'] });
  });

  it('gives the gateway the key ids, never the keys, in its config', () => {
    const plan = {
      identity: 'a-abcde',
      containers: { gateway: 'cb-a-abcde-gateway', agent: 'cb-a-abcde-agent' },
      hosts: [],
      extra_hosts: {},
      credentials: [],
      ssh: [{ Host: 'git.test', IdentityFile: '/k' }],
      limits: {},
    };
    const config = gatewayConfigFor(plan as unknown as Parameters<typeof gatewayConfigFor>[0]);
    expect(config.ssh_agent).toEqual({ port: 3130, keys: ['ssh-key-0'] });
    expect(
      gatewayConfigFor({ ...plan, ssh: [] } as unknown as Parameters<typeof gatewayConfigFor>[0]).ssh_agent,
    ).toBeNull();
  });
});
