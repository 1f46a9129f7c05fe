import { describe, expect, it } from 'vitest';
import { isTameLink, safeRelativePath } from '../../src/effects/docker/archive.js';
import { agentBinds, parseMemory, resourceLimits } from '../../src/effects/docker/containers.js';
import { demuxLogBuffer, LineSplitter } from '../../src/effects/docker/logs.js';
import { exitFromStatus } from '../../src/effects/docker/wait.js';
import { gatewayConfigFor } from '../../src/effects/start-gateway.js';
import { GatewayConfigSchema } from '../../src/gateway/config.js';
import { parseDecisionLine } from '../../src/gateway/protocol.js';
import { PermanentEffectError } from '../../src/effects/types.js';
import { testPlan } from '../support/docker.js';

// Pure pieces of the Docker effects; no daemon needed, kept beside the Docker tests they support.

describe('parseMemory', () => {
  it.each([
    ['512m', 512 * 1024 ** 2],
    ['4g', 4 * 1024 ** 3],
    ['1.5g', 1.5 * 1024 ** 3],
    ['2gb', 2 * 1024 ** 3],
    ['8388608', 8388608],
  ])('reads %s as %i bytes', (text, bytes) => {
    expect(parseMemory(text)).toBe(bytes);
  });

  it('refuses nonsense and sizes below Docker minimum as permanent errors', () => {
    expect(() => parseMemory('lots')).toThrow(PermanentEffectError);
    expect(() => parseMemory('1m')).toThrow(/6m minimum/);
  });

  it('turns plan limits into Docker host config, leaving unset limits out', () => {
    expect(resourceLimits({ memory: '512m', cpus: 1.5, pids: 100 })).toEqual({
      Memory: 512 * 1024 ** 2,
      NanoCpus: 1_500_000_000,
      PidsLimit: 100,
    });
    expect(resourceLimits({ memory: null, cpus: null, pids: null })).toEqual({});
  });
});

describe('agentBinds', () => {
  it('binds the cwd at its own path unless it is copied in', () => {
    expect(agentBinds(testPlan('bind-aaaaa', { cwd: '/src/app', copy_cwd: false }))).toEqual([
      { Type: 'bind', Source: '/src/app', Target: '/src/app', ReadOnly: false },
    ]);
    expect(agentBinds(testPlan('bind-aaaaa', { cwd: '/src/app', copy_cwd: true }))).toEqual([]);
  });

  it('does not bind the cwd twice when the plan already lists it', () => {
    const plan = testPlan('bind-aaaaa', {
      cwd: '/src/app',
      copy_cwd: false,
      mounts: [{ kind: 'bind', source: '/src/app', target: '/src/app', readonly: true, purpose: 'cwd' }],
    });
    expect(agentBinds(plan)).toEqual([{ Type: 'bind', Source: '/src/app', Target: '/src/app', ReadOnly: true }]);
  });
});

describe('archive path safety', () => {
  it('strips the folder name Docker puts first and refuses absolute or climbing names', () => {
    expect(safeRelativePath('.claude/projects/a.jsonl')).toBe('projects/a.jsonl');
    expect(safeRelativePath('.claude/')).toBe('');
    expect(safeRelativePath('/etc/passwd')).toBeUndefined();
    expect(safeRelativePath('.claude/../../etc/passwd')).toBeUndefined();
  });

  it('keeps only relative links without ..', () => {
    expect(isTameLink('projects/p1')).toBe(true);
    expect(isTameLink('/etc')).toBe(false);
    expect(isTameLink('../x')).toBe(false);
    expect(isTameLink('a/../../x')).toBe(false);
  });
});

describe('gateway output', () => {
  it('splits lines across chunk boundaries and keeps a partial last line until flushed', () => {
    const splitter = new LineSplitter();
    expect(splitter.push(Buffer.from('{"a":1}\n{"b"'))).toEqual(['{"a":1}']);
    expect(splitter.push(Buffer.from(':2}\npart'))).toEqual(['{"b":2}']);
    expect(splitter.flush()).toEqual(['part']);
  });

  it('parses numbered egress and capability lines and ignores ready lines and noise', () => {
    const refused = '{"t":"egress","n":4,"decision":"denied","reason":"header_too_large","at":"x"}';
    expect(parseDecisionLine(refused)).toEqual({
      t: 'egress',
      n: 4,
      decision: 'denied',
      reason: 'header_too_large',
      at: 'x',
    });
    const capability =
      '{"t":"capability","n":5,"request_id":"req-1","kind":"egress","host":"a.test","port":443,"reason":"r"}';
    expect(parseDecisionLine(capability)).toMatchObject({ t: 'capability', n: 5, request_id: 'req-1', host: 'a.test' });
    expect(parseDecisionLine('{"t":"ready","proxy_port":3128,"credential_port":3129}')).toBeUndefined();
    expect(parseDecisionLine('listening...')).toBeUndefined();
    expect(parseDecisionLine('{"t":"egress","n":"x"}')).toBeUndefined();
  });

  it('reads the nulls of lines from older gateways as absent fields', () => {
    const old =
      '{"t":"egress","n":4,"decision":"denied","host":null,"port":null,"method":null,' +
      '"reason":"header_too_large","at":"x"}';
    const parsed = parseDecisionLine(old);
    expect(parsed).toMatchObject({ t: 'egress', n: 4, decision: 'denied', reason: 'header_too_large' });
    expect(parsed && parsed.t === 'egress' && [parsed.host, parsed.port, parsed.method]).toEqual([
      undefined,
      undefined,
      undefined,
    ]);
    const oldCapability =
      '{"t":"capability","n":3,"request_id":"req-1","kind":"egress","host":"b.test","port":443,' +
      '"dockerfile":null,"reason":"r"}';
    const capability = parseDecisionLine(oldCapability);
    expect(capability).toMatchObject({ t: 'capability', n: 3, request_id: 'req-1', host: 'b.test', port: 443 });
    expect(capability?.t === 'capability' && capability.dockerfile).toBeUndefined();
  });

  it('demultiplexes a non-TTY log buffer into stdout and stderr', () => {
    const frame = (stream: number, text: string) => {
      const body = Buffer.from(text);
      const header = Buffer.alloc(8);
      header[0] = stream;
      header.writeUInt32BE(body.length, 4);
      return Buffer.concat([header, body]);
    };
    expect(demuxLogBuffer(Buffer.concat([frame(1, 'out1\n'), frame(2, 'err\n'), frame(1, 'out2\n')]))).toEqual({
      stdout: 'out1\nout2\n',
      stderr: 'err\n',
    });
  });
});

describe('exitFromStatus', () => {
  it.each([
    [0, null],
    [1, null],
    [130, 'SIGINT'],
    [137, 'SIGKILL'],
    [143, 'SIGTERM'],
  ])('names exit %i as signal %s', (code, signal) => {
    expect(exitFromStatus(code)).toEqual({ code, signal });
  });
});

describe('gatewayConfigFor', () => {
  it('passes host-gateway through for Docker to resolve, keys routes by position, passes the gateway schema', () => {
    const plan = testPlan('conf-aaaaa', {
      hosts: ['github.com'],
      extra_hosts: { 'mirror.internal.test': 'host-gateway', 'pinned.test': '10.9.8.7' },
      credentials: [
        { role: 'anthropic-base-url', upstream: 'https://api.anthropic.com', auth: 'api-key', token_source: 'env:K' },
        { host: 'api.github.com', auth: 'bearer', token_source: 'env:G' },
      ],
    });
    const config = gatewayConfigFor(plan);
    expect(config.extra_hosts).toEqual({ 'mirror.internal.test': 'host-gateway', 'pinned.test': '10.9.8.7' });
    expect(config.routes).toEqual([
      { id: 'route-0', role: 'anthropic-base-url', upstream: 'https://api.anthropic.com', auth: 'api-key' },
      { id: 'route-1', host: 'api.github.com', auth: 'bearer' },
    ]);
    expect(GatewayConfigSchema.safeParse(config).success).toBe(true);
  });
});
