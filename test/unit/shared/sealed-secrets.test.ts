import { describe, expect, it } from 'vitest';
import {
  generateHostKeyPair,
  hostKeyId,
  openSealedSecrets,
  sealSecrets,
  SealedSecretsError,
  SealedSecretsSchema,
} from '../../../src/shared/sealed-secrets.js';

const SECRETS = { 'route-0': 'sk-ant-sealed-0123456789', 'ssh-key-0': '-----BEGIN OPENSSH PRIVATE KEY-----\n…' };
const hostA = generateHostKeyPair();
const hostB = generateHostKeyPair();
const identity = 'claude-bottle-demo-1a2b3c';

function sealFor(keys = hostA, host = 'A', forIdentity = identity) {
  return sealSecrets(SECRETS, { identity: forIdentity, host, publicKey: keys.publicKey });
}

describe('sealed secrets', () => {
  it('open, in memory, with the key of the host they were sealed for', () => {
    const blob = sealFor();
    expect(SealedSecretsSchema.parse(blob)).toEqual(blob);
    expect(openSealedSecrets(blob, { identity, host: 'A', keys: hostA })).toEqual(SECRETS);
  });

  it('carry no secret in plaintext, and differ on every sealing of the same secrets', () => {
    const first = JSON.stringify(sealFor());
    expect(first).not.toContain('sk-ant-sealed');
    expect(first).not.toContain('OPENSSH');
    expect(JSON.stringify(sealFor())).not.toEqual(first);
  });

  it("do not open with another host's key, even when that host claims the blob", () => {
    const blob = sealFor();
    expect(() => openSealedSecrets(blob, { identity, host: 'B', keys: hostB })).toThrow(/sealed for host A/);
    const relabelled = { ...blob, host: 'B', key_id: hostKeyId(hostB.publicKey) };
    expect(() => openSealedSecrets(relabelled, { identity, host: 'B', keys: hostB })).toThrow(SealedSecretsError);
  });

  it("bind the host they were sealed for: sealed to B's key for host A, relabelled to B, they do not open", () => {
    const blob = sealSecrets(SECRETS, { identity, host: 'A', publicKey: hostB.publicKey });
    expect(() => openSealedSecrets({ ...blob, host: 'B' }, { identity, host: 'B', keys: hostB })).toThrow(
      /do not open/,
    );
  });

  it('name both keys when the host has a new key since they were sealed', () => {
    const blob = sealFor(hostA, 'A');
    const renewed = generateHostKeyPair();
    expect(() => openSealedSecrets(blob, { identity, host: 'A', keys: renewed })).toThrow(
      new RegExp(`key ${blob.key_id} of host A, but its worker now has key ${hostKeyId(renewed.publicKey)}`),
    );
  });

  it('do not open for another bottle', () => {
    const blob = sealFor();
    expect(() => openSealedSecrets(blob, { identity: 'claude-bottle-other-000000', host: 'A', keys: hostA })).toThrow(
      /do not open/,
    );
  });

  it.each(['ciphertext', 'tag', 'iv', 'salt', 'ephemeral_key'] as const)(
    'refuse a blob whose %s was altered',
    (field) => {
      const blob = sealFor();
      const bytes = Buffer.from(blob[field], field === 'ephemeral_key' ? 'base64url' : 'base64');
      bytes[0] ^= 1;
      const altered = { ...blob, [field]: bytes.toString(field === 'ephemeral_key' ? 'base64url' : 'base64') };
      expect(() => openSealedSecrets(altered, { identity, host: 'A', keys: hostA })).toThrow(SealedSecretsError);
    },
  );

  it('refuse a shortened authentication tag', () => {
    const blob = sealFor();
    const short = { ...blob, tag: Buffer.from(blob.tag, 'base64').subarray(0, 4).toString('base64') };
    expect(() => openSealedSecrets(short, { identity, host: 'A', keys: hostA })).toThrow(SealedSecretsError);
  });
});
