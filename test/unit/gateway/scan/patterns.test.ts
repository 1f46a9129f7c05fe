import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { findPattern, luhnValidCard } from '../../../../src/gateway/scan/patterns.js';
import { looksLikeEncodedLabels, shannonBitsPerChar } from '../../../../src/gateway/scan/hostname-entropy.js';

/** One sample per pattern, built at run time so no credential-shaped literal sits in the repository. */
const SAMPLES: Record<string, string> = {
  aws_access_key_id: `AKIA${'Q'.repeat(4)}${'2'.repeat(4)}ABCDEFGH`,
  aws_secret_access_key: `aws_secret_access_key = ${'wJalrXUtnFEMIK7MDENGbPxRfiCY'}${'EXAMPLEKEY12'}`,
  github_token: `ghp_${'A1b2C3d4E5'.repeat(3)}abcdef`,
  github_fine_grained_token: `github_pat_${'A'.repeat(22)}_${'b'.repeat(59)}`,
  gitlab_token: `glpat-${'x1Y2z3'.repeat(4)}`,
  slack_token: `xoxb-${'1234567890'}-${'abcdefABCDEF'}`,
  slack_webhook: `https://hooks.slack.com/services/T0001/B0002/${'abcdefghij'.repeat(3)}`,
  stripe_key: `sk_live_${'4eC39HqLyjWDarjtT1zdp7dc'}`,
  anthropic_api_key: `sk-ant-api03-${'AbCdEf012345_-'.repeat(3)}`,
  openai_api_key: `sk-proj-${'a'.repeat(24)}T3BlbkFJ${'b'.repeat(24)}`,
  google_api_key: `AIza${'Sy'}${'A'.repeat(33)}`,
  npm_token: `npm_${'a1B2c3D4e5'.repeat(3)}abcdef`,
  pypi_token: `pypi-AgEIcHlwaS5vcmc${'C'.repeat(60)}`,
  huggingface_token: `hf_${'abcdefghijklmnopq'.repeat(2)}`,
  jwt: `eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.${'dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U'}`,
  private_key_pem: `-----BEGIN ${'OPENSSH'} PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n`,
  connection_string_password: `postgres://app:${'s3cr3tPass'}@db.internal:5432/app`,
  card_number: `4111 1111 1111 ${'1111'}`,
};

describe('credential patterns', () => {
  it.each(Object.entries(SAMPLES))('%s is found inside ordinary text', (name, sample) => {
    expect(findPattern(`payload={"note":"see ${sample} here"}`)?.pattern.name).toBe(name);
  });

  const ORDINARY: Record<string, string> = {
    code:
      'export function main(argv: string[]): number {\n' +
      '  const total = items.reduce((a, b) => a + b, 0);\n  return total;\n}',
    uuid: 'request 3f2b8c1e-9d4a-4c6b-8e2f-1a7d5c3b9e0f done; trace 123e4567-e89b-12d3-a456-426614174000',
    git_sha: 'commit 210bba5c3f9e8d7a6b5c4d3e2f1a0b9c8d7e6f5a (HEAD), parent 764a6f7e1d2c3b4a5f6e7d8c9b0a1f2e3d4c5b6a',
    url: 'GET /simple/requests/ https://pypi.org/packages/source/r/requests/requests-2.31.0.tar.gz?sha256=abc',
    numbers: 'timestamps 1733563200000 1733563200001, order 123456789012, phone +1 555 010 0000',
    unix_url: 'postgres://localhost/app and redis://cache:6379/0 (no password)',
  };
  it.each(Object.entries(ORDINARY))('ordinary %s passes', (_name, text) => {
    expect(findPattern(text)).toBe(undefined);
  });

  it('base64 of binary data (an image) passes', () => {
    for (let i = 0; i < 50; i++) {
      const png = Buffer.concat([Buffer.from('89504e470d0a1a0a', 'hex'), randomBytes(3000)]);
      const hit = findPattern(`{"image":"data:image/png;base64,${png.toString('base64')}"}`);
      expect(hit?.pattern.name).toBe(undefined);
    }
  });

  it('card numbers need a valid Luhn sum and an issuer prefix', () => {
    expect(luhnValidCard('4111111111111111')).toBe(true);
    expect(luhnValidCard('4111111111111112')).toBe(false);
    expect(luhnValidCard('1234567812345670')).toBe(false);
    expect(luhnValidCard('0000000000000000')).toBe(false);
  });
});

describe('host label entropy', () => {
  it('tells encoded data from chosen names', () => {
    expect(shannonBitsPerChar('aaaa')).toBe(0);
    expect(looksLikeEncodedLabels(`${randomBytes(16).toString('hex')}.cdn.test`, 'cdn.test')).toBe(true);
    expect(looksLikeEncodedLabels('static-assets-europe-west.cdn.test', 'cdn.test')).toBe(false);
    expect(looksLikeEncodedLabels(`${'ab.'.repeat(40)}cdn.test`, 'cdn.test')).toBe(true);
  });
});
