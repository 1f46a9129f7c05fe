import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { HOST_ID_PATTERN } from '../engine/workers.js';
import { RuntimeFailure, UsageError } from '../shared/errors.js';
import { bottleHome } from '../shared/paths.js';
import { hostKeyId } from '../shared/sealed-secrets.js';

/**
 * The host keys this CLI has sealed to, like ssh's known_hosts: the first key
 * a host publishes is pinned, and a later, different one is refused until the
 * operator trusts it (`bottle hosts --trust`). Whoever can write to Redis can
 * publish a key there; only the operator can change this file.
 *
 * One line per host: `<host id> <key id> <public key>`; `#` starts a comment.
 */
export interface PinnedKey {
  host: string;
  keyId: string;
  publicKey: string;
}

const KEY_PATTERN = /^[A-Za-z0-9_-]{43}$/;

/** A pinned key no longer published: a runtime refusal (exit 1), not a mistake in the command or manifest. */
export class HostKeyChanged extends RuntimeFailure {}

export function knownHostsPath(env: NodeJS.ProcessEnv = process.env): string {
  return join(bottleHome(env), 'known-hosts');
}

/** Every pinned key; a line that is not a pin is refused with its number, so nothing is sealed past a damaged file. */
export function readKnownHosts(path: string): Map<string, PinnedKey> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new Map();
    throw new RuntimeFailure(`cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  const pins = new Map<string, PinnedKey>();
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const [host = '', keyId = '', publicKey = '', ...rest] = line.split(/\s+/);
    const problem =
      rest.length > 0 || !publicKey
        ? 'expected "<host id> <key id> <public key>"'
        : !HOST_ID_PATTERN.test(host)
          ? 'the host id is not a host id'
          : !KEY_PATTERN.test(publicKey)
            ? 'the public key is not a base64url X25519 key'
            : hostKeyId(publicKey) !== keyId
              ? "the key id is not the key's"
              : pins.has(host)
                ? `host ${host} is pinned twice`
                : undefined;
    if (problem) {
      throw new UsageError(
        `${path} line ${i + 1}: ${problem}; fix or delete that line ` +
          '(the next start pins what the host publishes, or `bottle hosts --trust HOST --key KEY_ID`)',
      );
    }
    pins.set(host, { host, keyId, publicKey });
  });
  return pins;
}

/** Writes the pins to a fresh 0600 file beside PATH, renamed over PATH: a reader sees the old or the new file. */
export function writeKnownHosts(path: string, pins: Iterable<PinnedKey>): void {
  const lines = ['# claude-bottle: the host keys this CLI seals to (bottle hosts --trust HOST --key KEY_ID)'];
  for (const pin of [...pins].sort((a, b) => a.host.localeCompare(b.host)))
    lines.push(`${pin.host} ${pin.keyId} ${pin.publicKey}`);
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const temp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const fd = openSync(temp, 'wx', 0o600);
  try {
    writeSync(fd, `${lines.join('\n')}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    renameSync(temp, path);
  } catch (err) {
    rmSync(temp, { force: true });
    throw err;
  }
}

export function pinHostKey(path: string, host: string, publicKey: string): void {
  const pins = readKnownHosts(path);
  pins.set(host, { host, keyId: hostKeyId(publicKey), publicKey });
  writeKnownHosts(path, pins.values());
}

/** The command that accepts HOST's current key, as the refusal names it. */
export const trustCommand = (host: string, keyId: string) => `bottle hosts --trust ${host} --key ${keyId}`;

/**
 * Passes the key HOST publishes if it is the pinned one, or if nothing is pinned yet (then it is
 * pinned now); refuses a different key, so nothing is sealed to it.
 */
export function checkHostKey(path: string, host: string, published: string): void {
  const pinned = readKnownHosts(path).get(host);
  if (!pinned) {
    pinHostKey(path, host, published);
    return;
  }
  if (pinned.publicKey === published) return;
  const now = hostKeyId(published);
  throw new HostKeyChanged(
    `host ${host} now publishes key ${now}, not the pinned key ${pinned.keyId}: nothing was sealed; ` +
      `if the host's key really changed, accept it with \`${trustCommand(host, now)}\``,
  );
}
