/**
 * images/agent/bottle-request against a gateway on loopback: it files the request, waits for the decision
 * and prints it (exit 0 approved, 1 denied with the operator's reason made visible, 2 usage). The decision
 * is written the way the worker writes it: a file in the decisions folder, then a reload.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startGateway, type RunningGateway } from '../../../src/gateway/gateway.js';
import {
  decisionFileName,
  type CapabilityLine,
  type DecisionFile,
  type GatewayLine,
} from '../../../src/gateway/protocol.js';

const SCRIPT = join(import.meta.dirname, '../../../images/agent/bottle-request');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** A PATH with the few tools the script needs besides curl, for the images that have no curl. */
function pathWithoutCurl(root: string): string {
  const bin = join(root, 'bin-without-curl');
  if (existsSync(bin)) return bin;
  mkdirSync(bin);
  for (const tool of ['cat', 'mktemp', 'rm', 'sed', 'sleep']) {
    symlinkSync(execFileSync('bash', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).trim(), join(bin, tool));
  }
  return bin;
}

let dir: string;
let gateway: RunningGateway;
let requests: CapabilityLine[];

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cb-bottle-request-'));
  requests = [];
  const onDecision = (line: GatewayLine) => {
    if (line.t === 'capability') requests.push(line);
  };
  gateway = await startGateway(
    { identity: 'dev-r3qst', proxy_port: 0, credential_port: 0, allow: [] },
    {},
    { decisionsDir: dir, onDecision, log: () => {} },
  );
});

afterEach(async () => {
  await gateway.close();
  rmSync(dir, { recursive: true, force: true });
});

let withCurl = true;

/** The environment the agent gets, in the variables the script could read; undefined leaves one out. */
function run(args: string[], agentEnv: Record<string, string | undefined> = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const PATH = withCurl ? (process.env.PATH ?? '/usr/bin:/bin') : pathWithoutCurl(dir);
    const given = { CLAUDE_BOTTLE_GATEWAY_URL: `http://127.0.0.1:${gateway.credentialPort}`, ...agentEnv };
    const set = Object.entries(given).filter((entry): entry is [string, string] => entry[1] !== undefined);
    const env = { PATH, ...Object.fromEntries(set) };
    const child = spawn(process.env.BASH ?? '/bin/bash', [SCRIPT, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

async function filed(): Promise<CapabilityLine> {
  for (let i = 0; i < 200 && requests.length === 0; i++) await new Promise((r) => setTimeout(r, 25));
  expect(requests).toHaveLength(1);
  return requests[0];
}

function decide(decision: DecisionFile): void {
  writeFileSync(join(dir, decisionFileName(decision.request_id)!), JSON.stringify(decision));
  gateway.reloadDecisions();
}

describe.each([
  ['with curl', true],
  ["with bash's /dev/tcp (an image without curl)", false],
])('bottle-request %s', (_how, curl) => {
  beforeEach(() => {
    withCurl = curl;
  });

  it('prints a denial with the operator reason, control characters made visible, and exits 1', async () => {
    const running = run(['egress', 'pypi.org:8443', '--reason', 'pip install "requests"\nfor the tests']);
    const request = await filed();
    expect(request).toMatchObject({ kind: 'egress', host: 'pypi.org', port: 8443 });
    expect(request.reason).toBe('pip install "requests"\nfor the tests');
    decide({
      request_id: request.request_id,
      decision: 'denied',
      reason: 'use the mirror\u001b[2J\u009b',
      applies: null,
      allow: null,
    });
    const result = await running;
    expect(result.code).toBe(1);
    expect(result.stdout).toContain('denied: the operator refused this request: use the mirror');
    expect(result.stdout).not.toMatch(/[\u001b\u009b]/);
  });

  it('says an approved host is allowed now and exits 0', async () => {
    const running = run(['egress', 'pypi.org', '--reason', 'pip']);
    const request = await filed();
    expect(request.port).toBe(443);
    decide({ request_id: request.request_id, decision: 'approved', reason: null, applies: 'live', allow: 'pypi.org' });
    const result = await running;
    expect(result.code).toBe(0);
    expect(result.stdout).toBe('approved: pypi.org is allowed now from this bottle; retry what needed it\n');
  });

  it('sends a Dockerfile whole and says the bottle will be rebuilt and resumed', async () => {
    const file = join(dir, 'Dockerfile.new');
    const dockerfile = 'FROM debian:bookworm-slim\nRUN echo "a\\tb" \\\n && true\n';
    writeFileSync(file, dockerfile);
    const running = run(['dockerfile', file, '--reason', 'needs jq']);
    const request = await filed();
    expect(request).toMatchObject({ kind: 'dockerfile', dockerfile });
    decide({ request_id: request.request_id, decision: 'approved', reason: null, applies: 'rebuild', allow: null });
    const result = await running;
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/rebuilt with the new Dockerfile and resumed with its transcript/);
    expect(readdirSync(dir)).toContain(decisionFileName(request.request_id));
  });

  it('refuses usage errors with exit 2 and a request the gateway refuses with exit 3', async () => {
    expect((await run(['egress', 'pypi.org'])).code).toBe(2);
    expect((await run(['network', 'pypi.org', '--reason', 'x'])).code).toBe(2);
    const refused = await run(['egress', 'https://pypi.org', '--reason', 'x']);
    expect(refused.code).toBe(3);
    expect(refused.stderr).toMatch(/refused the request \(HTTP 400\)/);
  });
});

describe('where bottle-request finds the gateway', () => {
  beforeEach(() => {
    withCurl = true;
  });

  // What the agent environment of older versions had the script guess from; here they name nothing that listens.
  const elsewhere = { ANTHROPIC_BASE_URL: 'http://127.0.0.1:1', NO_PROXY: 'localhost,127.0.0.1,127.0.0.2' };

  it('uses CLAUDE_BOTTLE_GATEWAY_URL, a trailing slash and all, whatever the other variables say', async () => {
    const url = `http://127.0.0.1:${gateway.credentialPort}/`;
    const running = run(['egress', 'pypi.org', '--reason', 'pip'], { ...elsewhere, CLAUDE_BOTTLE_GATEWAY_URL: url });
    const request = await filed();
    decide({ request_id: request.request_id, decision: 'approved', reason: null, applies: 'live', allow: 'pypi.org' });
    expect((await running).code).toBe(0);
  });

  it('without it, says so and exits 3 rather than guess from ANTHROPIC_BASE_URL or NO_PROXY', async () => {
    const gatewayAsBaseUrl = { ANTHROPIC_BASE_URL: `http://127.0.0.1:${gateway.credentialPort}` };
    const result = await run(['egress', 'pypi.org', '--reason', 'pip'], {
      ...gatewayAsBaseUrl,
      CLAUDE_BOTTLE_GATEWAY_URL: undefined,
    });
    expect(result.code).toBe(3);
    expect(result.stderr).toContain('CLAUDE_BOTTLE_GATEWAY_URL is not set');
    expect(requests).toEqual([]);
  });
});

describe('bottle-request with a method/path scope', () => {
  it('sends the scope, refused by a gateway with no entry whose rules it could widen (exit 3)', async () => {
    withCurl = true;
    const result = await run([
      'egress',
      'git.test',
      '--method',
      'post',
      '--path',
      '/a/git-receive-pack',
      '--reason',
      'x',
    ]);
    expect(result.code).toBe(3);
    expect(result.stderr).toContain('git.test:443 is not on the allowlist');
    expect(requests).toEqual([]);
  });

  it('refuses a scope on a Dockerfile request as a usage error (exit 2)', async () => {
    withCurl = true;
    const result = await run(['dockerfile', '/nonexistent', '--path', '/x', '--reason', 'x']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('--method and --path belong to an egress request');
  });
});
