import { describe, expect, it } from 'vitest';
import {
  CA_BUNDLE_TARGET,
  CREDENTIAL_PLACEHOLDER,
  GATEWAY_CA_TARGET,
  PROMPT_TARGET,
  SKILLS_TARGET_DIR,
  agentEnvNames,
  agentEnvironment,
} from '../../../src/plan/agent-env.js';
import { DEFAULT_HOSTS } from '../../../src/plan/default-hosts.js';
import { formatPlanText } from '../../../src/plan/format-text.js';
import { agentCommand, credentialRoutes, mergeHosts, planMounts } from '../../../src/plan/resolve.js';
import { BottlePlanSchema, type BottlePlan } from '../../../src/plan/schema.js';

/** The agent's hops on a bottle network whose gateway is at `gatewayIp` (the watch's sentinel is never used here). */
const hops = (gatewayIp: string) => ({ gatewayIp, sentinel: { host: '10.9.0.1', port: 9 } });

describe('mergeHosts', () => {
  it('sorts, deduplicates and normalises the bottle hosts together with the defaults', () => {
    const hosts = mergeHosts(['GitHub.com', 'github.com.', 'api.anthropic.com', '*.Example.org:8443'], DEFAULT_HOSTS);
    expect(hosts).toEqual([...new Set(hosts)].sort());
    expect(hosts.filter((h) => h === 'github.com')).toHaveLength(1);
    expect(hosts.filter((h) => h === 'api.anthropic.com')).toHaveLength(1);
    expect(hosts).toContain('*.example.org:8443');
    for (const d of DEFAULT_HOSTS) expect(hosts).toContain(d);
  });

  it('keeps the same host on different ports apart', () => {
    expect(mergeHosts(['a.test', 'a.test:8080'], [])).toEqual(['a.test', 'a.test:8080']);
  });
});

describe('credentialRoutes', () => {
  it('shows where each secret comes from, never a value, with default upstreams', () => {
    const routes = credentialRoutes({
      cred_proxy: {
        routes: [
          { role: 'anthropic-base-url', token_env: 'CLAUDE_BOTTLE_OAUTH_TOKEN', auth: 'oauth' },
          { host: 'API.github.com', token_file: '/run/secrets/gh', auth: 'bearer' },
          {
            host: 'api.internal.test',
            upstream: 'http://api.internal.test:9000',
            token_command: 'pass show x',
            auth: 'header',
            header: 'X-Api-Key',
          },
        ],
      },
    });
    expect(routes).toEqual([
      {
        role: 'anthropic-base-url',
        upstream: 'https://api.anthropic.com',
        auth: 'oauth',
        token_source: 'env:CLAUDE_BOTTLE_OAUTH_TOKEN',
      },
      {
        host: 'api.github.com',
        upstream: 'https://api.github.com',
        auth: 'bearer',
        token_source: 'file:/run/secrets/gh',
      },
      {
        host: 'api.internal.test',
        upstream: 'http://api.internal.test:9000',
        auth: 'header',
        header: 'X-Api-Key',
        token_source: 'command',
      },
    ]);
    expect(JSON.stringify(routes)).not.toContain('pass show x');
  });
});

describe('agentEnvironment', () => {
  it('points every proxy variable at the gateway; loopback and the gateway (credential port) go direct', () => {
    const env = agentEnvironment({ credentials: [] }, hops('10.9.0.2'));
    expect(env).toEqual({
      HOME: '/home/node',
      // bottle-request's gateway, with or without an Anthropic route.
      CLAUDE_BOTTLE_GATEWAY_URL: 'http://10.9.0.2:3129',
      HTTP_PROXY: 'http://10.9.0.2:3128',
      HTTPS_PROXY: 'http://10.9.0.2:3128',
      http_proxy: 'http://10.9.0.2:3128',
      https_proxy: 'http://10.9.0.2:3128',
      NO_PROXY: 'localhost,127.0.0.1,10.9.0.2',
      no_proxy: 'localhost,127.0.0.1,10.9.0.2',
      // Telemetry, error reporting and auto-update have no business leaving a sandbox.
      CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
      DISABLE_AUTOUPDATER: '1',
      DISABLE_TELEMETRY: '1',
      DISABLE_ERROR_REPORTING: '1',
    });
  });

  it('gives an oauth route ANTHROPIC_BASE_URL on the credential port and a placeholder OAuth token', () => {
    const env = agentEnvironment(
      { credentials: [{ role: 'anthropic-base-url', auth: 'oauth', token_source: 'env:T' }] },
      hops('10.9.0.2'),
    );
    expect(env.ANTHROPIC_BASE_URL).toBe('http://10.9.0.2:3129');
    expect(env.CLAUDE_CODE_OAUTH_TOKEN).toBe(CREDENTIAL_PLACEHOLDER);
    expect(env.ANTHROPIC_API_KEY).toBeUndefined();
  });

  it('gives an api-key route a placeholder ANTHROPIC_API_KEY instead', () => {
    const env = agentEnvironment(
      { credentials: [{ role: 'anthropic-base-url', auth: 'api-key', token_source: 'command' }] },
      hops('10.9.0.2'),
    );
    expect(env.ANTHROPIC_API_KEY).toBe(CREDENTIAL_PLACEHOLDER);
    expect(env.CLAUDE_CODE_OAUTH_TOKEN).toBeUndefined();
  });

  it('lists names only, sorted, with no Anthropic variables when there is no role route', () => {
    const names = agentEnvNames({
      credentials: [{ host: 'api.github.com', auth: 'bearer', token_source: 'env:GITHUB_TOKEN' }],
    });
    expect(names).toEqual([...names].sort());
    expect(names).not.toContain('ANTHROPIC_BASE_URL');
    expect(names).not.toContain('GITHUB_TOKEN');
  });

  it('a host route makes the agent trust the gateway CA (the gateway terminates TLS for that host)', () => {
    const env = agentEnvironment(
      { credentials: [{ host: 'api.github.com', auth: 'bearer', token_source: 'env:GITHUB_TOKEN' }] },
      hops('10.9.0.2'),
    );
    expect(env).toMatchObject({
      NODE_EXTRA_CA_CERTS: GATEWAY_CA_TARGET,
      SSL_CERT_FILE: CA_BUNDLE_TARGET,
      CURL_CA_BUNDLE: CA_BUNDLE_TARGET,
      GIT_SSL_CAINFO: CA_BUNDLE_TARGET,
      REQUESTS_CA_BUNDLE: CA_BUNDLE_TARGET,
    });
  });

  it('without a host route the agent keeps its own trust settings', () => {
    for (const credentials of [
      [],
      [{ role: 'anthropic-base-url' as const, auth: 'oauth' as const, token_source: 'env:T' }],
    ]) {
      const env = agentEnvironment({ credentials }, hops('10.9.0.2'));
      for (const name of [
        'NODE_EXTRA_CA_CERTS',
        'SSL_CERT_FILE',
        'CURL_CA_BUNDLE',
        'GIT_SSL_CAINFO',
        'REQUESTS_CA_BUNDLE',
      ])
        expect(env[name]).toBeUndefined();
    }
  });
});

describe('agentCommand', () => {
  it('adds the system prompt flag for claude when there is a prompt, before the extra args', () => {
    expect(agentCommand({ command: ['claude'], prompt: '/p/prompt.md' }, ['-p', 'hi'])).toEqual([
      'claude',
      '--append-system-prompt-file',
      PROMPT_TARGET,
      '-p',
      'hi',
    ]);
  });

  it('leaves other commands and prompt-less agents alone', () => {
    expect(agentCommand({ command: ['bash', '-l'], prompt: '/p/prompt.md' }, ['x'])).toEqual(['bash', '-l', 'x']);
    expect(agentCommand({ command: ['claude'] }, [])).toEqual(['claude']);
  });
});

describe('planMounts', () => {
  it('binds the cwd at the same path, or copies it with copy_cwd, and copies prompt and skills read-only', () => {
    const base = {
      cwd: '/work/proj',
      prompt: '/m/prompt.md',
      skills: [{ name: 'tdd', source: '/m/skills/tdd' }],
    };
    const bound = planMounts({ ...base, copyCwd: false });
    // No ssh key is among them: the gateway holds the keys.
    expect(bound).toEqual([
      { kind: 'bind', source: '/work/proj', target: '/work/proj', readonly: false, purpose: 'cwd' },
      { kind: 'copy', source: '/m/prompt.md', target: PROMPT_TARGET, readonly: true, purpose: 'prompt' },
      { kind: 'copy', source: '/m/skills/tdd', target: `${SKILLS_TARGET_DIR}/tdd`, readonly: true, purpose: 'skill' },
    ]);
    expect(planMounts({ ...base, copyCwd: true })[0]).toMatchObject({ kind: 'copy', purpose: 'cwd' });
  });
});

describe('formatPlanText', () => {
  const plan: BottlePlan = BottlePlanSchema.parse({
    identity: 'implementer-a1b2c',
    agent: 'implementer',
    bottle: 'dev',
    image: {
      tag: 'claude-bottle/agent:0123456789abcdef',
      context_hash: 'f'.repeat(64),
      dockerfile: 'builtin:agent',
      builtin: true,
    },
    gateway_image: {
      tag: 'claude-bottle/gateway:fedcba9876543210',
      context_hash: 'e'.repeat(64),
      dockerfile: 'builtin:gateway',
      builtin: true,
    },
    runtime: 'runsc',
    networks: { internal: 'cb-implementer-a1b2c-internal', egress: 'cb-implementer-a1b2c-egress' },
    containers: { gateway: 'cb-implementer-a1b2c-gateway', agent: 'cb-implementer-a1b2c-agent' },
    hosts: ['api.anthropic.com', 'github.com'],
    default_hosts: ['api.anthropic.com'],
    extra_hosts: { 'mirror.internal.test': 'host-gateway' },
    mounts: [{ kind: 'bind', source: '/work/proj', target: '/work/proj', purpose: 'cwd' }],
    env_names: ['HOME', 'HTTPS_PROXY'],
    credentials: [
      { host: 'api.github.com', upstream: 'https://api.github.com', auth: 'bearer', token_source: 'env:GITHUB_TOKEN' },
    ],
    ssh: [],
    skills: [{ name: 'tdd', source: '/m/skills/tdd' }],
    prompt: null,
    command: ['claude', '-p', 'two words'],
    args: ['-p', 'two words'],
    cwd: '/work/proj',
    copy_cwd: false,
    limits: { memory: '4g', cpus: 2, pids: null },
    host: 'box',
    manifest_path: '/m/claude-bottle.json',
  });

  it('summarises the plan for people, marking default hosts and quoting odd arguments', () => {
    const text = formatPlanText(plan);
    expect(text).toMatch(/^agent: +implementer$/m);
    expect(text).toMatch(/^image: +claude-bottle\/agent:0123456789abcdef \(built-in\)$/m);
    expect(text).toMatch(/^runtime: +runsc \(gVisor\)$/m);
    expect(text).toMatch(/^hosts: +2 allowed$/m);
    expect(text).toMatch(/^ {2}- api\.anthropic\.com {2}\(default\)$/m);
    expect(text).toMatch(/^ {2}- github\.com$/m);
    expect(text).toMatch(/^command: +claude -p "two words"$/m);
    expect(text).toMatch(/api\.github\.com -> https:\/\/api\.github\.com \(bearer, from env:GITHUB_TOKEN\)/);
    expect(text).toMatch(/^cwd: +\/work\/proj \(bind-mounted\)$/m);
    // A plan made before limits had defaults (pids null) shows what the container will get.
    expect(text).toMatch(/^limits: +memory 4g, cpus 2, pids 1024 \(default\), transcript 256m \(default\)$/m);
    expect(text).toContain(
      "\nprocesses:    at most 1024 of the agent's user (threads included), by RLIMIT_NPROC inside gVisor;",
    );
    expect(text).toMatch(/^ssh: +\(none\)$/m);
    expect(text).toMatch(/^direct IP: +refused, not recorded \(planned before the network watch\)$/m);
    const watched = formatPlanText({ ...plan, containers: { ...plan.containers, netwatch: 'cb-w' } });
    expect(watched).toMatch(/^direct IP: +refused and recorded by the network watch \(cb-w\)$/m);
  });

  it("shows that the gateway holds each ssh key, and says when the host's port 22 is not allowed", () => {
    const ssh = [
      { Host: 'github.com', IdentityFile: '/h/.ssh/id_ed25519' },
      { Host: 'git.example.org', IdentityFile: '/h/.ssh/deploy' },
    ];
    const text = formatPlanText({ ...plan, hosts: [...plan.hosts, 'github.com:22'], ssh });
    expect(text).toMatch(/^ {2}- github\.com: key \/h\/\.ssh\/id_ed25519 \(held by the gateway\)$/m);
    expect(text).toContain(
      'git.example.org: key /h/.ssh/deploy (held by the gateway; add "git.example.org:22" to egress.allow',
    );
  });
});

describe('agentEnvironment and ssh', () => {
  it("points SSH_AUTH_SOCK at the bottle's agent socket only when the bottle has ssh entries", () => {
    expect(agentEnvironment({ credentials: [], ssh: [] }, hops('10.0.0.2')).SSH_AUTH_SOCK).toBeUndefined();
    const env = agentEnvironment(
      { credentials: [], ssh: [{ Host: 'github.com', IdentityFile: '/h/id' }] },
      hops('10.0.0.2'),
    );
    expect(env.SSH_AUTH_SOCK).toBe('/home/node/.ssh/agent.sock');
    expect(agentEnvNames({ credentials: [], ssh: [{ Host: 'github.com', IdentityFile: '/h/id' }] })).toContain(
      'SSH_AUTH_SOCK',
    );
  });
});
