import { describe, expect, it } from 'vitest';
import { ManifestError } from '../../../src/manifest/errors.js';
import { parseManifest, parseJsonText } from '../../../src/manifest/load.js';
import { UsageError } from '../../../src/shared/errors.js';
import { validManifestJson } from '../../support/manifest-fixtures.js';

const MANIFEST_PATH = '/home/u/project/claude-bottle.json';

function problemsOf(json: unknown): ManifestError {
  try {
    parseManifest(json, MANIFEST_PATH);
  } catch (err) {
    if (err instanceof ManifestError) return err;
    throw err;
  }
  throw new Error('expected a ManifestError, but the manifest was accepted');
}

type Mutate = (m: Record<string, any>) => unknown;
interface BadCase {
  name: string;
  mutate: Mutate;
  path: string;
  message: RegExp;
}

const bottle = (m: Record<string, any>) => m.bottles[0];
const agent = (m: Record<string, any>) => m.agents[0];
const routes = (m: Record<string, any>) => bottle(m).cred_proxy.routes;

const BAD_MANIFESTS: BadCase[] = [
  {
    name: 'unknown top-level key',
    mutate: (m) => {
      m.bottle = [];
    },
    path: 'bottle',
    message: /unknown key "bottle".*allowed keys here: bottles, agents/,
  },
  {
    name: 'unknown bottle key',
    mutate: (m) => {
      bottle(m).image = 'x';
    },
    path: 'bottles[0].image',
    message: /unknown key "image"/,
  },
  {
    name: 'unknown egress key',
    mutate: (m) => {
      bottle(m).egress.deny = [];
    },
    path: 'bottles[0].egress.deny',
    message: /unknown key "deny".*allow, proxy, pipelock_image/,
  },
  {
    name: 'unknown route key',
    mutate: (m) => {
      routes(m)[1].token = 'x';
    },
    path: 'bottles[0].cred_proxy.routes[1].token',
    message: /unknown key "token"/,
  },
  {
    name: 'unknown agent key',
    mutate: (m) => {
      agent(m).model = 'opus';
    },
    path: 'agents[0].model',
    message: /unknown key "model"/,
  },
  {
    name: 'unknown ssh entry key',
    mutate: (m) => {
      bottle(m).ssh = [{ Host: 'github.com', IdentityFile: '~/.ssh/id', User: 'git' }];
    },
    path: 'bottles[0].ssh[0].User',
    message: /unknown key "User"/,
  },
  {
    name: 'runtime key on a bottle',
    mutate: (m) => {
      bottle(m).runtime = 'runsc';
    },
    path: 'bottles[0].runtime',
    message: /gVisor \(runsc\) is auto-detected.*remove the key/,
  },
  {
    name: 'agent without bottle',
    mutate: (m) => {
      delete agent(m).bottle;
    },
    path: 'agents[0].bottle',
    message: /agent needs "bottle"/,
  },
  {
    name: 'agent naming an unknown bottle',
    mutate: (m) => {
      agent(m).bottle = 'prod';
    },
    path: 'agents[0].bottle',
    message: /no bottle named "prod"; known bottles: dev/,
  },
  {
    name: 'duplicate bottle names',
    mutate: (m) => {
      m.bottles.push({ name: 'dev' });
    },
    path: 'bottles[1].name',
    message: /duplicate bottle name "dev" \(also bottles\[0\]\)/,
  },
  {
    name: 'duplicate agent names',
    mutate: (m) => {
      m.agents.push({ name: 'implementer', bottle: 'dev' });
    },
    path: 'agents[1].name',
    message: /duplicate agent name "implementer"/,
  },
  {
    name: 'bare "*" egress entry',
    mutate: (m) => {
      bottle(m).egress.allow[2] = '*';
    },
    path: 'bottles[0].egress.allow[2]',
    message: /^"\*" alone would allow every host; list hosts or use "\*.example.com"$/,
  },
  {
    name: '"*." with no domain',
    mutate: (m) => {
      bottle(m).egress.allow.push('*.');
    },
    path: 'bottles[0].egress.allow[3]',
    message: /no domain after it/,
  },
  {
    name: 'egress entry with a scheme',
    mutate: (m) => {
      bottle(m).egress.allow[0] = 'https://github.com';
    },
    path: 'bottles[0].egress.allow[0]',
    message: /URL scheme.*"github.com"/,
  },
  {
    name: 'egress entry with a path',
    mutate: (m) => {
      bottle(m).egress.allow[0] = 'github.com/org';
    },
    path: 'bottles[0].egress.allow[0]',
    message: /contains a path/,
  },
  {
    name: 'egress entry with a space',
    mutate: (m) => {
      bottle(m).egress.allow[1] = 'git hub.com';
    },
    path: 'bottles[0].egress.allow[1]',
    message: /whitespace/,
  },
  {
    name: 'non-ASCII egress entry',
    mutate: (m) => {
      bottle(m).egress.allow[0] = 'bücher.de';
    },
    path: 'bottles[0].egress.allow[0]',
    message: /punycode \("xn--\.\.\."\)/,
  },
  {
    name: 'empty label in egress entry',
    mutate: (m) => {
      bottle(m).egress.allow[0] = 'github..com';
    },
    path: 'bottles[0].egress.allow[0]',
    message: /empty label/,
  },
  {
    name: 'over-long label',
    mutate: (m) => {
      bottle(m).egress.allow[0] = `${'a'.repeat(64)}.com`;
    },
    path: 'bottles[0].egress.allow[0]',
    message: /longer than 63/,
  },
  {
    name: 'invalid character in host',
    mutate: (m) => {
      bottle(m).egress.allow[0] = 'git$hub.com';
    },
    path: 'bottles[0].egress.allow[0]',
    message: /invalid characters/,
  },
  {
    name: 'wildcard in the middle',
    mutate: (m) => {
      bottle(m).egress.allow[0] = 'a.*.com';
    },
    path: 'bottles[0].egress.allow[0]',
    message: /wildcard not at the start/,
  },
  {
    name: 'port out of range',
    mutate: (m) => {
      bottle(m).egress.allow[2] = 'registry.npmjs.org:70000';
    },
    path: 'bottles[0].egress.allow[2]',
    message: /port 70000 is out of range/,
  },
  {
    name: 'port zero',
    mutate: (m) => {
      bottle(m).egress.allow[2] = 'registry.npmjs.org:0';
    },
    path: 'bottles[0].egress.allow[2]',
    message: /port 0 is out of range/,
  },
  {
    name: 'non-numeric port',
    mutate: (m) => {
      bottle(m).egress.allow[2] = 'registry.npmjs.org:https';
    },
    path: 'bottles[0].egress.allow[2]',
    message: /port "https" is not a number/,
  },
  {
    name: 'egress.allow not an array',
    mutate: (m) => {
      bottle(m).egress.allow = 'github.com';
    },
    path: 'bottles[0].egress.allow',
    message: /must be an array of host strings/,
  },
  {
    name: 'unknown egress proxy',
    mutate: (m) => {
      bottle(m).egress.proxy = 'squid';
    },
    path: 'bottles[0].egress.proxy',
    message: /"gateway" or "pipelock"/,
  },
  {
    name: 'memory without unit',
    mutate: (m) => {
      bottle(m).limits.memory = '4096';
    },
    path: 'bottles[0].limits.memory',
    message: /"512m" or "4g"/,
  },
  {
    name: 'memory as a number',
    mutate: (m) => {
      bottle(m).limits.memory = 4;
    },
    path: 'bottles[0].limits.memory',
    message: /memory must be a string/,
  },
  {
    name: 'zero cpus',
    mutate: (m) => {
      bottle(m).limits.cpus = 0;
    },
    path: 'bottles[0].limits.cpus',
    message: /greater than 0/,
  },
  {
    name: 'fractional pids',
    mutate: (m) => {
      bottle(m).limits.pids = 10.5;
    },
    path: 'bottles[0].limits.pids',
    message: /whole number/,
  },
  {
    name: 'transcript limit without unit',
    mutate: (m) => {
      bottle(m).limits.transcript = '1000';
    },
    path: 'bottles[0].limits.transcript',
    message: /"256m" or "1g"/,
  },
  {
    name: 'unknown limit',
    mutate: (m) => {
      bottle(m).limits.disk = '10g';
    },
    path: 'bottles[0].limits.disk',
    message: /unknown key "disk".*memory, cpus, pids/,
  },
  {
    name: 'extra_hosts value not an address',
    mutate: (m) => {
      bottle(m).extra_hosts['mirror.internal.test'] = 'localhost';
    },
    path: 'bottles[0].extra_hosts["mirror.internal.test"]',
    message: /IPv4 or IPv6 address or "host-gateway"/,
  },
  {
    name: 'extra_hosts value not a string',
    mutate: (m) => {
      bottle(m).extra_hosts['mirror.internal.test'] = 10;
    },
    path: 'bottles[0].extra_hosts["mirror.internal.test"]',
    message: /must be a string/,
  },
  {
    name: 'extra_hosts name with a wildcard',
    mutate: (m) => {
      bottle(m).extra_hosts = { '*.internal.test': '10.0.0.1' };
    },
    path: 'bottles[0].extra_hosts["*.internal.test"]',
    message: /not a plain host name/,
  },
  {
    name: 'route with both role and host',
    mutate: (m) => {
      routes(m)[0].host = 'api.anthropic.com';
    },
    path: 'bottles[0].cred_proxy.routes[0].host',
    message: /either "role" or "host", not both/,
  },
  {
    name: 'route with neither role nor host',
    mutate: (m) => {
      delete routes(m)[1].host;
    },
    path: 'bottles[0].cred_proxy.routes[1].host',
    message: /needs "role": "anthropic-base-url" or a "host"/,
  },
  {
    name: 'role route with bearer auth',
    mutate: (m) => {
      routes(m)[0].auth = 'bearer';
    },
    path: 'bottles[0].cred_proxy.routes[0].auth',
    message: /use "oauth".*or "api-key"/,
  },
  {
    name: 'host route with oauth auth',
    mutate: (m) => {
      routes(m)[1].auth = 'oauth';
    },
    path: 'bottles[0].cred_proxy.routes[1].auth',
    message: /host routes use "bearer", "basic" or "header"/,
  },
  {
    name: 'header auth without header name',
    mutate: (m) => {
      routes(m)[1].auth = 'header';
    },
    path: 'bottles[0].cred_proxy.routes[1].header',
    message: /auth "header" needs "header"/,
  },
  {
    name: 'route without a token source',
    mutate: (m) => {
      delete routes(m)[1].token_env;
    },
    path: 'bottles[0].cred_proxy.routes[1].token_env',
    message: /missing token source: set exactly one of token_env, token_file or token_command/,
  },
  {
    name: 'route with two token sources',
    mutate: (m) => {
      routes(m)[1].token_file = '~/.gh-token';
    },
    path: 'bottles[0].cred_proxy.routes[1].token_file',
    message: /token_env and token_file are both set; keep exactly one/,
  },
  {
    name: 'plain-http upstream to a public host',
    mutate: (m) => {
      routes(m)[0].upstream = 'http://api.anthropic.com';
    },
    path: 'bottles[0].cred_proxy.routes[0].upstream',
    message: /plain http.*clear text/,
  },
  {
    name: 'upstream that is not a URL',
    mutate: (m) => {
      routes(m)[0].upstream = 'api.anthropic.com';
    },
    path: 'bottles[0].cred_proxy.routes[0].upstream',
    message: /is not a URL/,
  },
  {
    name: 'unknown role',
    mutate: (m) => {
      routes(m)[0].role = 'openai-base-url';
    },
    path: 'bottles[0].cred_proxy.routes[0].role',
    message: /only role/,
  },
  {
    name: 'unknown auth kind',
    mutate: (m) => {
      routes(m)[1].auth = 'token';
    },
    path: 'bottles[0].cred_proxy.routes[1].auth',
    message: /auth must be one of/,
  },
  {
    name: 'token_env that is not a variable name',
    mutate: (m) => {
      routes(m)[1].token_env = '$GITHUB_TOKEN';
    },
    path: 'bottles[0].cred_proxy.routes[1].token_env',
    message: /environment variable name/,
  },
  {
    name: 'ssh entry without IdentityFile',
    mutate: (m) => {
      bottle(m).ssh = [{ Host: 'github.com' }];
    },
    path: 'bottles[0].ssh[0].IdentityFile',
    message: /missing required key "IdentityFile"/,
  },
  {
    name: 'ssh Host with a space',
    mutate: (m) => {
      bottle(m).ssh = [{ Host: 'github.com gitlab.com', IdentityFile: '~/.ssh/id' }];
    },
    path: 'bottles[0].ssh[0].Host',
    message: /without spaces/,
  },
  {
    name: 'ssh not an array',
    mutate: (m) => {
      bottle(m).ssh = { Host: 'github.com', IdentityFile: '~/.ssh/id' };
    },
    path: 'bottles[0].ssh',
    message: /ssh must be an array/,
  },
  {
    name: 'agent name with capitals',
    mutate: (m) => {
      agent(m).name = 'Implementer';
    },
    path: 'agents[0].name',
    message: /invalid agent name: use 1-40 characters/,
  },
  {
    name: 'agent name too long',
    mutate: (m) => {
      agent(m).name = 'a'.repeat(41);
    },
    path: 'agents[0].name',
    message: /invalid agent name/,
  },
  {
    name: 'bottle name with a dot',
    mutate: (m) => {
      bottle(m).name = 'dev.box';
      agent(m).bottle = 'dev.box';
    },
    path: 'bottles[0].name',
    message: /invalid bottle name/,
  },
  {
    name: 'empty command',
    mutate: (m) => {
      agent(m).command = [];
    },
    path: 'agents[0].command',
    message: /command must not be empty; omit it to run \["claude"\]/,
  },
  {
    name: 'command as a string',
    mutate: (m) => {
      agent(m).command = 'claude --verbose';
    },
    path: 'agents[0].command',
    message: /array of strings/,
  },
  {
    name: 'empty command element',
    mutate: (m) => {
      agent(m).command = ['claude', ''];
    },
    path: 'agents[0].command[1]',
    message: /must not be empty/,
  },
  {
    name: 'skills as a string',
    mutate: (m) => {
      agent(m).skills = './skills/tdd';
    },
    path: 'agents[0].skills',
    message: /skills must be an array/,
  },
  {
    name: 'two skills with one folder name',
    mutate: (m) => {
      agent(m).skills = ['./a/tdd', './b/tdd'];
    },
    path: 'agents[0].skills[1]',
    message: /two skills are named "tdd"/,
  },
  {
    name: 'copy_cwd as a string',
    mutate: (m) => {
      agent(m).copy_cwd = 'yes';
    },
    path: 'agents[0].copy_cwd',
    message: /true or false/,
  },
  {
    name: 'bottles not an array',
    mutate: (m) => {
      m.bottles = { dev: {} };
    },
    path: 'bottles',
    message: /bottles must be an array/,
  },
  {
    name: 'missing agents',
    mutate: (m) => {
      delete m.agents;
    },
    path: 'agents',
    message: /needs an "agents" array/,
  },
  {
    name: 'egress as a string',
    mutate: (m) => {
      bottle(m).egress = 'github.com';
    },
    path: 'bottles[0].egress',
    message: /egress must be a JSON object with the keys allow, proxy, pipelock_image/,
  },
  {
    name: 'route as a string',
    mutate: (m) => {
      bottle(m).cred_proxy.routes[0] = 'anthropic';
    },
    path: 'bottles[0].cred_proxy.routes[0]',
    message: /a cred_proxy route must be a JSON object/,
  },
  { name: 'manifest that is an array', mutate: () => [], path: '(top level)', message: /must be a JSON object/ },
];

describe('parseManifest rejects bad manifests, naming the JSON path and the problem', () => {
  it('has at least 30 distinct cases', () => {
    expect(new Set(BAD_MANIFESTS.map((c) => c.name)).size).toBeGreaterThanOrEqual(30);
  });

  for (const c of BAD_MANIFESTS) {
    it(c.name, () => {
      const json = validManifestJson();
      const replaced = c.mutate(json);
      const err = problemsOf(replaced === undefined ? json : replaced);
      const atPath = err.problems.filter((p) => p.path === c.path);
      expect(
        atPath.map((p) => p.message),
        `problems: ${JSON.stringify(err.problems)}`,
      ).toEqual(expect.arrayContaining([expect.stringMatching(c.message)]));
      expect(err.message).toContain(`  - ${c.path}: `);
    });
  }
});

describe('manifest errors', () => {
  it('reports every problem in the file at once, with a count', () => {
    const json = validManifestJson();
    json.bottles[0].runtime = 'runsc';
    json.bottles[0].egress.allow.push('*');
    json.agents[0].command = [];
    json.agents.push({ name: 'reviewer', bottle: 'nope' });
    const err = problemsOf(json);
    expect(err.problems.map((p) => p.path)).toEqual(
      expect.arrayContaining([
        'bottles[0].runtime',
        'bottles[0].egress.allow[3]',
        'agents[0].command',
        'agents[1].bottle',
      ]),
    );
    expect(err.message.split('\n')[0]).toBe(`manifest ${MANIFEST_PATH}: ${err.problems.length} problems`);
    expect(err.problems.length).toBe(4);
  });

  it('is a usage error (exit 2)', () => {
    const err = problemsOf({ bottles: [], agents: [{ name: 'a', bottle: 'b' }] });
    expect(err).toBeInstanceOf(UsageError);
    expect(err.exitCode).toBe(2);
    expect(err.message).toMatch(/^manifest .*: 1 problem\n/);
  });

  it('reports invalid JSON with line and column', () => {
    const text = '{\n  "bottles": [],\n  "agents": [,]\n}\n';
    expect(() => parseJsonText(text, MANIFEST_PATH)).toThrow(
      /invalid JSON at line 3, column 14: unexpected ",", expected a value/,
    );
  });

  it('points at a trailing comma in invalid JSON', () => {
    const text = '{\n  "bottles": [],\n  "agents": [],\n}';
    expect(() => parseJsonText(text, MANIFEST_PATH)).toThrow(/line 3, column 15: trailing comma before "}"/);
  });

  it('points at a trailing comma inside an array', () => {
    const text = '{\n  "bottles": [\n    { "name": "dev" },\n  ],\n  "agents": []\n}';
    expect(() => parseJsonText(text, MANIFEST_PATH)).toThrow(/line 3, column 22: trailing comma before "]"/);
  });

  it('refuses a comment, at its position: a manifest is JSON, not JSONC', () => {
    const text = '{\n  "bottles": [], // none yet\n  "agents": []\n}';
    expect(() => parseJsonText(text, MANIFEST_PATH)).toThrow(/invalid JSON at line 2, column 18: a comment; /);
  });

  it('points at a string left open at the end of its line', () => {
    const text = '{\n  "bottles": [\n    { "name": "dev }\n  ],\n  "agents": []\n}';
    expect(() => parseJsonText(text, MANIFEST_PATH)).toThrow(/line 3, column 15: string not closed on its line/);
  });

  it('points at a key written without quotes', () => {
    const text = '{\n  bottles: [],\n  "agents": []\n}';
    expect(() => parseJsonText(text, MANIFEST_PATH)).toThrow(/line 2, column 3: unexpected "b"/);
  });
});

describe('parseManifest accepts valid manifests', () => {
  it('applies defaults for command, copy_cwd, egress proxy and empty sections', () => {
    const m = parseManifest({ bottles: [{ name: 'min' }], agents: [{ name: 'a', bottle: 'min' }] }, MANIFEST_PATH);
    expect(m.agents[0]).toMatchObject({ command: ['claude'], copy_cwd: false, skills: [] });
    expect(m.bottles[0]).toMatchObject({
      egress: { allow: [], proxy: 'gateway' },
      cred_proxy: { routes: [] },
      ssh: [],
      extra_hosts: {},
      limits: {},
    });
  });

  it('resolves relative paths against the manifest folder and expands ~', () => {
    const json = validManifestJson();
    json.bottles[0].dockerfile = './bottles/dev.Dockerfile';
    json.bottles[0].ssh = [{ Host: 'github.com', IdentityFile: '~/.ssh/id_ed25519' }];
    json.agents[0].prompt = 'prompts/implementer.md';
    json.agents[0].skills = ['./skills/tdd', '/abs/skills/review'];
    const m = parseManifest(json, MANIFEST_PATH);
    expect(m.bottles[0].dockerfile).toBe('/home/u/project/bottles/dev.Dockerfile');
    expect(m.bottles[0].ssh[0].IdentityFile).toMatch(/^\/.*\/\.ssh\/id_ed25519$/);
    expect(m.bottles[0].ssh[0].IdentityFile).not.toContain('~');
    expect(m.agents[0].prompt).toBe('/home/u/project/prompts/implementer.md');
    expect(m.agents[0].skills).toEqual(['/home/u/project/skills/tdd', '/abs/skills/review']);
  });

  it('allows plain-http upstreams only for local fake hosts', () => {
    for (const upstream of ['http://fake-anthropic.test:8080', 'http://localhost:9000', 'http://api.internal']) {
      const json = validManifestJson();
      json.bottles[0].cred_proxy.routes[0].upstream = upstream;
      expect(() => parseManifest(json, MANIFEST_PATH)).not.toThrow();
    }
  });

  it('accepts IP addresses as exact egress hosts', () => {
    const json = validManifestJson();
    json.bottles[0].egress.allow.push('10.1.2.3:8443', '[2001:db8::1]:443');
    expect(() => parseManifest(json, MANIFEST_PATH)).not.toThrow();
  });
});
