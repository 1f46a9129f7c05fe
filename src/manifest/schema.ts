import { isIP } from 'node:net';
import { z } from 'zod';
import { AGENT_NAME_PATTERN } from '../shared/identity.js';
import { parseHostPattern, HostPatternError } from '../shared/host-pattern.js';
import { HTTP_METHOD, pathGlobProblem } from '../shared/path-glob.js';
import { mergePortSpecs, parsePortSpec, PortSpecError } from '../shared/port-spec.js';

/**
 * The manifest schema, exactly as /work/shared/DESIGN.md describes it. Every
 * object is strict (a typo is an error, not a silently ignored key), and every
 * message says what is wrong and how to fix it, because the user reads these
 * straight from `bottle start`.
 */

/** Bottle names share the agent charset: they end up in image tags and Docker names. */
export const BOTTLE_NAME_PATTERN = AGENT_NAME_PATTERN;

function strictObject<T extends z.ZodRawShape>(what: string, shape: T) {
  const allowed = Object.keys(shape)
    .filter((k) => k !== 'runtime')
    .join(', ');
  return z
    .object(shape, { invalid_type_error: `${what} must be a JSON object with the keys ${allowed}` })
    .strict({ message: `unknown key; allowed keys here: ${allowed}` });
}

const nonEmptyString = (what: string) =>
  z.string({ invalid_type_error: `${what} must be a string` }).min(1, { message: `${what} must not be empty` });

const nameField = (what: string) =>
  z
    .string({ required_error: `${what} needs a "name"`, invalid_type_error: `${what} name must be a string` })
    .regex(AGENT_NAME_PATTERN, {
      message: `invalid ${what} name: use 1-40 characters of a-z, 0-9, "_" or "-", starting with a letter or digit`,
    });

const hostPatternString = z
  .string({ invalid_type_error: 'each egress entry must be a string such as "github.com"' })
  .superRefine((raw, ctx) => {
    try {
      parseHostPattern(raw);
    } catch (err) {
      if (!(err instanceof HostPatternError)) throw err;
      // Reasons that already quote the entry ("*" alone ...) need no second copy of it.
      const subject = err.reason.startsWith(JSON.stringify(raw)) ? '' : `${JSON.stringify(raw)}: `;
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: `${subject}${err.reason}; ${err.fix}` });
    }
  });

/**
 * An allowlist entry with more to say than its host: `inspect: false` for a
 * client that pins certificates (the gateway then checks only the TLS server
 * name), `methods` and `paths` (globs on the canonical path, `!` to exclude)
 * to narrow what may be sent. Rules need inspection to be enforced.
 */
const AllowEntrySchema = strictObject('an egress.allow entry', {
  host: hostPatternString,
  inspect: z.boolean({ invalid_type_error: 'inspect must be true or false' }).optional(),
  methods: z
    .array(
      z
        .string({ invalid_type_error: 'each method must be a string such as "GET"' })
        .regex(HTTP_METHOD, { message: 'a method is one HTTP token such as "GET"' })
        .transform((m) => m.toUpperCase()),
      { invalid_type_error: 'methods must be an array such as ["GET", "HEAD"]' },
    )
    .min(1, { message: 'methods must name at least one method; leave it out to allow all' })
    .optional(),
  paths: z
    .array(
      z.string({ invalid_type_error: 'each path must be a glob string such as "/org/**"' }).superRefine((glob, ctx) => {
        const problem = pathGlobProblem(glob);
        if (problem) ctx.addIssue({ code: z.ZodIssueCode.custom, message: problem });
      }),
      { invalid_type_error: 'paths must be an array of globs such as ["/org/**"]' },
    )
    .min(1, { message: 'paths must hold at least one glob; leave it out to allow every path' })
    .optional(),
}).superRefine((entry, ctx) => {
  if (entry.inspect === false && (entry.methods || entry.paths))
    ctx.addIssue({
      code: z.ZodIssueCode.custom,
      path: ['inspect'],
      message: 'method and path rules need inspection; remove "inspect": false or the rules',
    });
});
export type AllowEntry = z.infer<typeof AllowEntrySchema>;

/** A string or an object, each checked by its own schema so its messages are the specific ones (not a union's). */
const allowItem = z.unknown().transform((value, ctx): string | AllowEntry => {
  const parsed =
    typeof value === 'object' && value !== null && !Array.isArray(value)
      ? AllowEntrySchema.safeParse(value)
      : hostPatternString.safeParse(value);
  if (parsed.success) return parsed.data;
  for (const issue of parsed.error.issues) ctx.addIssue(issue);
  return z.NEVER;
});

const EgressSchema = strictObject('egress', {
  allow: z
    .array(allowItem, {
      invalid_type_error: 'egress.allow must be an array of host strings or {"host": ...} objects',
    })
    .default([]),
  proxy: z
    .enum(['gateway', 'pipelock'], { errorMap: () => ({ message: 'proxy must be "gateway" or "pipelock"' }) })
    .default('gateway'),
  pipelock_image: nonEmptyString('pipelock_image').optional(),
  dlp: z.enum(['block', 'audit'], { errorMap: () => ({ message: 'dlp must be "block" or "audit"' }) }).default('block'),
});

/**
 * Upstreams must be https so the secret the gateway injects never crosses the
 * network in clear text. Plain http is allowed only for names that cannot be
 * public hosts (`.test`, `.internal`, `localhost`): local fakes in tests and
 * on-host mirrors.
 */
export function upstreamProblem(upstream: string): string | null {
  let url: URL;
  try {
    url = new URL(upstream);
  } catch {
    return `upstream ${JSON.stringify(upstream)} is not a URL; write e.g. "https://api.anthropic.com"`;
  }
  if (url.protocol === 'https:') return null;
  if (url.protocol === 'http:') {
    const h = url.hostname.toLowerCase().replace(/\.$/, '');
    if (h === 'localhost' || h.endsWith('.localhost') || h.endsWith('.test') || h.endsWith('.internal')) return null;
    return (
      `upstream ${JSON.stringify(upstream)} uses plain http, which would send the secret in clear text; ` +
      'use https:// (http:// is only allowed for .test, .internal and localhost hosts)'
    );
  }
  return `upstream ${JSON.stringify(upstream)} must be an https:// URL`;
}

const TOKEN_SOURCES = ['token_env', 'token_file', 'token_command'] as const;
const ROLE_AUTHS = ['oauth', 'api-key'];
const HOST_AUTHS = ['bearer', 'basic', 'header'];

const RouteSchema = strictObject('a cred_proxy route', {
  role: z
    .literal('anthropic-base-url', {
      errorMap: () => ({ message: 'role must be "anthropic-base-url" (the only role)' }),
    })
    .optional(),
  host: nonEmptyString('host').optional(),
  upstream: nonEmptyString('upstream').optional(),
  token_env: z
    .string({ invalid_type_error: 'token_env must be a string' })
    .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, {
      message: 'token_env must be an environment variable name such as "GITHUB_TOKEN"',
    })
    .optional(),
  token_file: nonEmptyString('token_file').optional(),
  token_command: nonEmptyString('token_command').optional(),
  auth: z.enum(['oauth', 'api-key', 'bearer', 'basic', 'header'], {
    errorMap: () => ({
      message: 'auth must be one of "oauth", "api-key" (role routes) or "bearer", "basic", "header" (host routes)',
    }),
  }),
  header: z
    .string({ invalid_type_error: 'header must be a string' })
    .regex(/^[A-Za-z0-9-]+$/, { message: 'header must be an HTTP header name such as "X-Api-Key"' })
    .optional(),
}).superRefine((route, ctx) => {
  const issue = (path: string, message: string) => ctx.addIssue({ code: z.ZodIssueCode.custom, path: [path], message });
  const sources = TOKEN_SOURCES.filter((k) => route[k] !== undefined);
  if (sources.length === 0)
    issue('token_env', 'missing token source: set exactly one of token_env, token_file or token_command');
  if (sources.length > 1) issue(sources[1], `${sources.join(' and ')} are both set; keep exactly one token source`);

  if (route.role && route.host)
    issue('host', 'a route has either "role" or "host", not both; split it into two routes');
  if (!route.role && !route.host)
    issue('host', 'a route needs "role": "anthropic-base-url" or a "host" to inject the secret for');
  if (route.role && !ROLE_AUTHS.includes(route.auth)) {
    issue(
      'auth',
      `auth "${route.auth}" does not fit an anthropic-base-url route; ` +
        'use "oauth" (CLAUDE_CODE_OAUTH_TOKEN) or "api-key" (ANTHROPIC_API_KEY)',
    );
  }
  if (route.host && !route.role && !HOST_AUTHS.includes(route.auth)) {
    issue(
      'auth',
      `auth "${route.auth}" is only for anthropic-base-url routes; host routes use "bearer", "basic" or "header"`,
    );
  }
  if (route.auth === 'header' && !route.header)
    issue('header', 'auth "header" needs "header": the header name to put the secret in, e.g. "X-Api-Key"');
  if (route.auth !== 'header' && route.header !== undefined)
    issue('header', `"header" only applies to auth "header"; remove it or set auth to "header"`);
  if (route.host) {
    try {
      const p = parseHostPattern(route.host);
      if (p.kind !== 'exact')
        issue('host', `route host ${JSON.stringify(route.host)} must be one exact host, not a wildcard`);
    } catch (err) {
      if (!(err instanceof HostPatternError)) throw err;
      issue('host', `${JSON.stringify(route.host)}: ${err.reason}; ${err.fix}`);
    }
  }
  if (route.upstream !== undefined) {
    const problem = upstreamProblem(route.upstream);
    if (problem) issue('upstream', problem);
  }
});

const CredProxySchema = strictObject('cred_proxy', {
  routes: z.array(RouteSchema, { invalid_type_error: 'cred_proxy.routes must be an array of routes' }),
});

const SshEntrySchema = strictObject('an ssh entry', {
  Host: z
    .string({ required_error: 'ssh entry needs "Host"', invalid_type_error: 'Host must be a string' })
    .regex(/^[A-Za-z0-9._*?-]+$/, {
      message: 'Host must be one ssh host name or pattern without spaces, e.g. "github.com"',
    }),
  IdentityFile: nonEmptyString('IdentityFile').refine((s) => !s.includes('\n'), {
    message: 'IdentityFile must be one path',
  }),
});

const extraHostName = z.string().superRefine((name, ctx) => {
  try {
    const p = parseHostPattern(name);
    if (p.kind !== 'exact' || p.port !== null || isIP(p.host))
      throw new HostPatternError(
        'not a plain host name',
        'write a name without wildcard or port, e.g. "mirror.internal.test"',
      );
  } catch (err) {
    if (!(err instanceof HostPatternError)) throw err;
    ctx.addIssue({
      code: z.ZodIssueCode.custom,
      message: `extra_hosts name ${JSON.stringify(name)}: ${err.reason}; ${err.fix}`,
    });
  }
});

const extraHostAddress = z
  .string({ invalid_type_error: 'an extra_hosts value must be a string: an IPv4/IPv6 address or "host-gateway"' })
  .refine((v) => v === 'host-gateway' || isIP(v) !== 0, {
    message: 'must be an IPv4 or IPv6 address or "host-gateway" (the Docker host), as in docker run --add-host',
  });

const budgetAmount = (unit: string) =>
  z
    .number({ invalid_type_error: `budget.${unit} must be a number` })
    .positive({ message: `budget.${unit} must be greater than 0` })
    .finite();

/** `{ "tokens": N }` or `{ "usd": N }`: what the bottle may spend on the Messages API (src/shared/budget.ts). */
const BudgetLimitSchema = z.union(
  [
    strictObject('budget', { tokens: budgetAmount('tokens').int({ message: 'budget.tokens must be a whole number' }) }),
    strictObject('budget', { usd: budgetAmount('usd') }),
  ],
  { errorMap: () => ({ message: 'budget must be {"tokens": N} or {"usd": N} (one of the two)' }) },
);

const LimitsSchema = strictObject('limits', {
  memory: z
    .string({ invalid_type_error: 'memory must be a string such as "512m" or "4g"' })
    .regex(/^[1-9][0-9]*[bkmg]$/i, {
      message: 'memory must look like "512m" or "4g" (a whole number and one of b, k, m, g)',
    })
    .optional(),
  cpus: z
    .number({ invalid_type_error: 'cpus must be a number such as 2 or 0.5' })
    .positive({ message: 'cpus must be greater than 0' })
    .optional(),
  pids: z
    .number({ invalid_type_error: 'pids must be a whole number such as 1024' })
    .int({ message: 'pids must be a whole number' })
    .positive({ message: 'pids must be at least 1' })
    .optional(),
  transcript: z
    .string({ invalid_type_error: 'transcript must be a string such as "256m" or "1g"' })
    .regex(/^[1-9][0-9]*[bkmg]$/i, {
      message: 'transcript must look like "256m" or "1g" (a whole number and one of b, k, m, g)',
    })
    .optional(),
  budget: BudgetLimitSchema.optional(),
});

/** `[ADDR:]HOST_PORT:BOTTLE_PORT` entries (src/shared/port-spec.ts), each host port once. */
const PortsSchema = z
  .array(z.string({ invalid_type_error: 'a ports entry must be a string such as "127.0.0.1:3000:3000"' }), {
    invalid_type_error: 'ports must be an array such as ["127.0.0.1:3000:3000"]',
  })
  .superRefine((entries, ctx) => {
    try {
      mergePortSpecs(entries.map(parsePortSpec));
    } catch (err) {
      if (!(err instanceof PortSpecError)) throw err;
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: `ports: ${err.message}` });
    }
  });

export const BottleSchema = strictObject('a bottle', {
  name: nameField('bottle'),
  dockerfile: nonEmptyString('dockerfile').optional(),
  egress: EgressSchema.optional(),
  cred_proxy: CredProxySchema.optional(),
  ssh: z
    .array(SshEntrySchema, { invalid_type_error: 'ssh must be an array of {"Host", "IdentityFile"} entries' })
    .optional(),
  extra_hosts: z
    .record(extraHostName, extraHostAddress, {
      invalid_type_error: 'extra_hosts must be an object mapping host names to addresses',
    })
    .optional(),
  limits: LimitsSchema.optional(),
  ports: PortsSchema.optional(),
  // Listed so that its presence gets a dedicated explanation instead of "unknown key".
  runtime: z
    .undefined({
      errorMap: () => ({
        message:
          '"runtime" is no longer a manifest setting: gVisor (runsc) is auto-detected and used whenever ' +
          'the Docker daemon has it registered; remove the key',
      }),
    })
    .optional(),
});

export const AgentSchema = strictObject('an agent', {
  name: nameField('agent'),
  bottle: z.string({
    required_error: 'agent needs "bottle": the name of one of the bottles',
    invalid_type_error: 'bottle must be a bottle name (string)',
  }),
  prompt: nonEmptyString('prompt').optional(),
  skills: z
    .array(nonEmptyString('skill path'), { invalid_type_error: 'skills must be an array of skill folder paths' })
    .optional(),
  command: z
    .array(nonEmptyString('command element'), {
      invalid_type_error: 'command must be an array of strings, e.g. ["claude"]',
    })
    .min(1, { message: 'command must not be empty; omit it to run ["claude"]' })
    .optional(),
  copy_cwd: z.boolean({ invalid_type_error: 'copy_cwd must be true or false' }).optional(),
  remote_control: z.boolean({ invalid_type_error: 'remote_control must be true or false' }).optional(),
});

export const ManifestSchema = strictObject('the manifest', {
  bottles: z.array(BottleSchema, {
    required_error: 'the manifest needs a "bottles" array',
    invalid_type_error: 'bottles must be an array',
  }),
  agents: z.array(AgentSchema, {
    required_error: 'the manifest needs an "agents" array',
    invalid_type_error: 'agents must be an array',
  }),
});

type RawManifest = z.infer<typeof ManifestSchema>;
type RawBottle = RawManifest['bottles'][number];
type RawAgent = RawManifest['agents'][number];
export type CredentialRouteConfig = NonNullable<RawBottle['cred_proxy']>['routes'][number];

/** A loaded manifest: defaults applied, every path absolute. */
export interface Bottle extends Omit<
  RawBottle,
  'runtime' | 'egress' | 'cred_proxy' | 'ssh' | 'extra_hosts' | 'limits'
> {
  /** `allow`: every entry's host pattern; `entries`: the entries written as objects (inspection and rules). */
  egress: {
    allow: string[];
    entries: AllowEntry[];
    proxy: 'gateway' | 'pipelock';
    pipelock_image?: string;
    dlp: 'block' | 'audit';
  };
  cred_proxy: { routes: CredentialRouteConfig[] };
  ssh: Array<{ Host: string; IdentityFile: string }>;
  extra_hosts: Record<string, string>;
  limits: {
    memory?: string;
    cpus?: number;
    pids?: number;
    transcript?: string;
    budget?: { tokens: number } | { usd: number };
  };
}
export interface Agent extends Omit<RawAgent, 'skills' | 'command' | 'copy_cwd'> {
  skills: string[];
  command: string[];
  copy_cwd: boolean;
}
export interface Manifest {
  bottles: Bottle[];
  agents: Agent[];
}

export const DEFAULT_AGENT_COMMAND = ['claude'];
