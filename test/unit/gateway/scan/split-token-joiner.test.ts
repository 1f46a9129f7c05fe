import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { encodeClientFrames, type ClientFrame } from '../../../../bench/websocket-client-frames.js';
import { ScanBlockedError, type ScanFinding, type ScannedRequest } from '../../../../src/gateway/request-scanner.js';
import { SecretScanner, type SecretScannerOptions } from '../../../../src/gateway/scan/secret-scanner.js';
import { frameGate } from '../../../../src/gateway/websocket-frames.js';

const TOKEN = 'ghp_ABCDEFGHIJKLMNOPQRSTUVWXYZabcdef12';
const CANARY = 'AKIAZ7QCANARY4TESTKEY';

function scanner(options: Partial<SecretScannerOptions> = {}): SecretScanner {
  return new SecretScanner({
    secrets: {},
    canaries: { aws_access_key_id: CANARY },
    mode: 'block',
    wildcardDomains: [],
    injected: [],
    fingerprintKey: Buffer.alloc(32, 3),
    ...options,
  });
}

function connection(overrides: Partial<ScannedRequest> = {}): ScannedRequest {
  return { host: 'chat.test', port: 443, method: 'GET', url: '/ws', headers: {}, ...overrides };
}

/** Each text a whole message of its own on one connection; every finding, in order. */
function sendMessages(s: SecretScanner, texts: string[], req = connection()): ScanFinding[] {
  return texts.flatMap((text) => s.checkFrame(req, Buffer.from(text, 'latin1'), true) ?? []);
}

/** Real frames through the gateway's frame gate: the finding that closed the connection, if any. */
async function sendFrames(s: SecretScanner, frames: ClientFrame[]): Promise<ScanFinding | undefined> {
  const req = connection();
  const gate = frameGate((payload, startsMessage) => {
    const finding = s.checkFrame(req, payload, startsMessage);
    if (finding?.action === 'block') throw new ScanBlockedError(finding);
  });
  const sink = new Writable({ write: (_c, _e, done) => done() });
  return pipeline(Readable.from([encodeClientFrames(frames)]), gate, sink).then(
    () => undefined,
    (err: unknown) => (err as ScanBlockedError).finding,
  );
}

const text = (payload: string, fin = true): ClientFrame => ({ opcode: 'text', payload: Buffer.from(payload), fin });
const more = (payload: string, fin = true): ClientFrame => ({
  opcode: 'continuation',
  payload: Buffer.from(payload),
  fin,
});

describe('a credential cut across WebSocket messages', () => {
  it('is blocked when each piece has a label, recorded by rule, place and fingerprint, never the value', () => {
    const s = scanner();
    const findings = sendMessages(s, [`part1: ${TOKEN.slice(0, 18)}`, `part2: ${TOKEN.slice(18)}`]);
    expect(findings).toEqual([
      {
        action: 'block',
        reason: 'secret_pattern',
        detail: {
          class: 'pattern',
          rule: 'github_token',
          where: 'frame',
          fingerprint: s.fingerprint('github_token', TOKEN),
        },
      },
    ]);
    expect(JSON.stringify(findings)).not.toContain(TOKEN.slice(4, 18));
  });

  it.each([
    ['no label', ''],
    ['blanks only', '  '],
    ['a tab after the label', 'b:\t'],
  ])('is blocked with %s before the second piece', (_name, label) => {
    const findings = sendMessages(scanner(), [`token ${TOKEN.slice(0, 10)}`, `${label}${TOKEN.slice(10)} sent`]);
    expect(findings.map((f) => f.detail.rule)).toEqual(['github_token']);
  });

  it('is blocked when cut into more than two labelled messages', () => {
    const pieces = [TOKEN.slice(0, 8), TOKEN.slice(8, 16), TOKEN.slice(16, 28), TOKEN.slice(28)];
    const findings = sendMessages(
      scanner(),
      pieces.map((piece, i) => `p${i}: ${piece}`),
    );
    expect(findings.map((f) => f.detail.rule)).toEqual(['github_token']);
  });

  it('is blocked when the labelled piece itself comes in fragments', async () => {
    const finding = await sendFrames(scanner(), [
      text(`part1: ${TOKEN.slice(0, 12)}`),
      text(`part2: ${TOKEN.slice(12, 20)}`, false),
      more(TOKEN.slice(20)),
    ]);
    expect(finding?.detail).toMatchObject({ rule: 'github_token', where: 'frame' });
  });

  it('cuts no label out of the middle of a message (a continuation fragment has none)', async () => {
    const finding = await sendFrames(scanner(), [
      text(`part1: ${TOKEN.slice(0, 12)}`),
      text(TOKEN.slice(12, 20), false),
      more(`part2: ${TOKEN.slice(20)}`),
    ]);
    expect(finding).toBeUndefined();
  });

  it('is audited, not blocked, in audit mode, and each rule reported once per connection', () => {
    const s = scanner({ mode: 'audit' });
    const req = connection();
    const findings = sendMessages(s, [`part1: ${TOKEN.slice(0, 18)}`, `part2: ${TOKEN.slice(18)}`], req);
    expect(findings.map((f) => [f.action, f.detail.rule, f.detail.where])).toEqual([
      ['audit', 'github_token', 'frame'],
    ]);
    expect(sendMessages(s, [`again: ${TOKEN}`], req)).toEqual([]);
  });

  it('finds a held secret cut the same way, blocked whatever the mode', () => {
    const findings = sendMessages(scanner({ mode: 'audit' }), [`a: ${CANARY.slice(0, 9)}`, `b: ${CANARY.slice(9)}`]);
    expect(findings.map((f) => [f.action, f.reason, f.detail.where])).toEqual([['block', 'canary', 'frame']]);
  });

  it('keeps a bounded tail: a first piece longer than the stream carry is not joined', () => {
    const jwtHeader = `eyJ${'a'.repeat(600)}`;
    const cut = sendMessages(scanner(), [`one: ${jwtHeader}`, `two: .eyJpc3MiOiJpbnRlcm5hbCJ9.sig`]);
    const short = sendMessages(scanner(), [`one: eyJhbGciOiJIUzI1NiJ9`, `two: .eyJpc3MiOiJpbnRlcm5hbCJ9.sig`]);
    expect([cut.length, short.map((f) => f.detail.rule)]).toEqual([0, ['jwt']]);
  });

  it('keeps each connection apart', () => {
    const s = scanner();
    const one = connection();
    const other = connection();
    expect(s.checkFrame(one, Buffer.from(`part1: ${TOKEN.slice(0, 18)}`), true)).toBeUndefined();
    expect(s.checkFrame(other, Buffer.from(`part2: ${TOKEN.slice(18)}`), true)).toBeUndefined();
  });
});

describe('ordinary messages', () => {
  it.each<[string, string[]]>([
    ['docs naming the prefix, then a labelled sentence', ['classic tokens start with ghp_', 'note: they are long']],
    [
      'docs naming the prefix, then a commit name in a sentence',
      ['see ghp_', 'fixed in 9fceb02d0ae598e95dc970b74767f19372d61af8 today'],
    ],
    ['a piece, then a JSON message', [`part1: ${TOKEN.slice(0, 18)}`, `{"part2":"${TOKEN.slice(18)}"}`]],
    [
      'a piece, a message between, then the rest',
      [`x ${TOKEN.slice(0, 18)}`, 'ok, go on', `part2: ${TOKEN.slice(18)}`],
    ],
    ['a whole token, then a labelled word', [`key: ${TOKEN}`, 'note: ABCDEFGH']],
    ['chat', ['{"type":"message","text":"has anyone reviewed it?"}', 'status: ok', 'sk-learn', 'pipeline: fit']],
  ])('%s: nothing is found by joining', (_name, messages) => {
    const findings = sendMessages(scanner({ mode: 'audit' }), messages);
    // A whole token sent on its own is found as ever, and only once.
    expect(findings.length).toBe(messages.some((m) => m.includes(TOKEN)) ? 1 : 0);
  });

  it('does not join credential shapes on a connection to the model API (held secrets only)', () => {
    const findings = sendMessages(
      scanner(),
      [`part1: ${TOKEN.slice(0, 18)}`, `part2: ${TOKEN.slice(18)}`],
      connection({ toModel: true }),
    );
    expect(findings).toEqual([]);
  });
});
