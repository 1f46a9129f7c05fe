import { createServer, type Server, type Socket } from 'node:net';
import ssh2, { type ParsedKey } from 'ssh2';
import { checkSshPrivateKey, sshKeyProblemText } from '../shared/ssh-key.js';

// ssh2 is CommonJS: Node's ESM loader offers only its default export.
const { AgentProtocol } = ssh2;

/**
 * The bottle's ssh-agent: the private keys of the manifest's ssh entries stay
 * in the gateway, and the agent container reaches them only through this
 * protocol, so it can ask for signatures but never read a key. It speaks the
 * ssh-agent protocol on a TCP port of the gateway's internal address (gVisor
 * refuses a Unix socket shared through a volume with another container); inside
 * the bottle a bridge serves it at SSH_AUTH_SOCK (see plan/ssh-config.ts).
 *
 * Only listing identities and signing are answered; adding, removing or
 * locking keys is refused, so the agent cannot change what the gateway holds.
 */

export class SshKeyError extends Error {
  override name = 'SshKeyError';
}

export interface SshAgentKey {
  id: string;
  key: ParsedKey;
  publicBlob: Buffer;
}

/**
 * Parses each key; an unusable one fails the gateway's start with a message that never quotes the key.
 * The CLI made the same check when it read the key (src/shared/ssh-key.ts), so this one fails only when
 * the two disagree.
 */
export function loadSshKeys(ids: readonly string[], secrets: Readonly<Record<string, string>>): SshAgentKey[] {
  return ids.map((id) => {
    const text = secrets[id];
    if (text === undefined) throw new SshKeyError(`no secret for ssh key ${id}`);
    const { key, problem } = checkSshPrivateKey(text);
    if (problem) throw new SshKeyError(`ssh key ${id} cannot be used: it ${sshKeyProblemText(problem)}`);
    return { id, key, publicBlob: key.getPublicSSH() };
  });
}

/** Serves one connection: identities and signatures with the held keys, a failure for anything else. */
export function serveSshAgent(socket: Socket, keys: readonly SshAgentKey[], log: (message: string) => void): void {
  const protocol = new AgentProtocol(false);
  protocol.on('identities', (req) => {
    protocol.getIdentitiesReply(
      req,
      keys.map((k) => k.key),
    );
  });
  protocol.on('sign', (req, publicKey, data, flags) => {
    const blob = publicKey.getPublicSSH();
    const held = keys.find((k) => k.publicBlob.equals(blob));
    if (!held) return protocol.failureReply(req);
    try {
      protocol.signReply(req, held.key.sign(data, flags.hash));
    } catch (err) {
      log(`ssh-agent: signing with ${held.id} failed: ${(err as Error).message}`);
      protocol.failureReply(req);
    }
  });
  const end = () => socket.destroy();
  protocol.on('error', end);
  socket.on('error', () => protocol.destroy());
  socket.on('end', () => protocol.end());
  protocol.pipe(socket);
  const frames = new AgentFrames((frame) => protocol.write(frame), end);
  socket.on('data', (chunk: Buffer) => frames.push(chunk));
}

const REQUEST_IDENTITIES = 11;
const SIGN_REQUEST = 13;
/** Far above any sign request ssh makes; a client sending more is cut off. */
const MAX_AGENT_MESSAGE = 256 * 1024;

/**
 * Splits the client's bytes into agent messages. ssh2's AgentProtocol answers
 * a message it does not know with a failure but then reads that message's body
 * as the next message; OpenSSH's client opens with such a message (the
 * session-bind extension). Those reach it with their body removed, so it
 * still answers each in turn and stays in step.
 */
class AgentFrames {
  private buffered: Buffer = Buffer.alloc(0);

  constructor(
    private readonly deliver: (frame: Buffer) => void,
    private readonly abort: () => void,
  ) {}

  push(chunk: Buffer): void {
    this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
    while (this.buffered.length >= 5) {
      const length = this.buffered.readUInt32BE(0);
      if (length < 1 || length > MAX_AGENT_MESSAGE) return this.abort();
      if (this.buffered.length < 4 + length) return;
      const frame = this.buffered.subarray(0, 4 + length);
      this.buffered = this.buffered.subarray(4 + length);
      const type = frame[4];
      const known = type === REQUEST_IDENTITIES || type === SIGN_REQUEST;
      this.deliver(known ? frame : Buffer.from([0, 0, 0, 1, type]));
    }
  }
}

export interface SshAgentServer {
  server: Server;
  /** Stops listening and ends open connections. */
  close(): Promise<void>;
}

export function createSshAgentServer(keys: readonly SshAgentKey[], log: (message: string) => void): SshAgentServer {
  const open = new Set<Socket>();
  const server = createServer((socket) => {
    open.add(socket);
    socket.on('close', () => open.delete(socket));
    serveSshAgent(socket, keys, log);
  });
  const close = () =>
    new Promise<void>((resolve) => {
      if (!server.listening) return resolve();
      server.close(() => resolve());
      for (const socket of open) socket.destroy();
    });
  return { server, close };
}
