import { readFileSync } from 'node:fs';
import { HOST_GATEWAY, resolveHostGateway } from './host-gateway.js';
import { isIP } from 'node:net';
import { z } from 'zod';
import { HostPatternError, parseHostPattern } from '../shared/host-pattern.js';
import { BUDGET_UNITS } from '../shared/budget.js';
import { PriceTableSchema } from '../shared/prices.js';
import { GATEWAY_CREDENTIAL_PORT, GATEWAY_PROXY_PORT, GrantRulesSchema } from './protocol.js';
import { HTTP_METHOD, pathGlobProblem } from '../shared/path-glob.js';

/**
 * The gateway's configuration file, written by the launcher into the gateway
 * container before it starts. Holds no secret: secrets arrive in a separate
 * file (GatewaySecretsSchema) so the config can be logged and inspected.
 */
const PortSchema = z.number().int().min(0).max(65535);

const RouteSchema = z
  .object({
    id: z.string().min(1),
    role: z.literal('anthropic-base-url').optional(),
    /** Host routes: the host whose requests get the secret injected. */
    host: z.string().min(1).optional(),
    /** Where requests go; required for the anthropic route, defaults to https://<host> for host routes. */
    upstream: z.string().url().optional(),
    auth: z.enum(['oauth', 'api-key', 'bearer', 'basic', 'header']),
    /** Header name for auth "header". */
    header: z
      .string()
      .regex(/^[A-Za-z0-9-]+$/)
      .optional(),
  })
  .strict()
  .superRefine((route, ctx) => {
    if (route.role === 'anthropic-base-url' && !route.upstream) {
      ctx.addIssue({ code: 'custom', message: 'the anthropic-base-url route needs an upstream URL' });
    }
    if (route.role === undefined && !route.host) {
      ctx.addIssue({ code: 'custom', message: 'a route needs either role "anthropic-base-url" or a host' });
    }
    if (route.auth === 'header' && !route.header) {
      ctx.addIssue({ code: 'custom', message: 'auth "header" needs the header name in "header"' });
    }
  });
export type GatewayRoute = z.infer<typeof RouteSchema>;

/**
 * How one allowlist entry is treated beyond "may connect": inspected (TLS
 * terminated with the per-run CA, requests read) unless `inspect` is false,
 * and the methods and path globs allowed (path-rules.ts). An allowlisted
 * pattern without an entry (configs written before inspection, hosts granted
 * live) is tunnelled end to end.
 */
const EntrySchema = z
  .object({
    host: z.string(),
    inspect: z.boolean().default(true),
    methods: z.array(z.string().regex(HTTP_METHOD)).min(1).optional(),
    paths: z
      .array(z.string().refine((glob) => pathGlobProblem(glob) === null, 'not a path glob'))
      .min(1)
      .optional(),
    /** Method/path grants approved in earlier runs of this bottle (kept for resumes), widening the rules. */
    grants: z.array(GrantRulesSchema).optional(),
  })
  .strict();
export type GatewayEntry = z.infer<typeof EntrySchema>;

export const GatewayConfigSchema = z
  .object({
    identity: z.string().min(1),
    proxy_port: PortSchema.default(GATEWAY_PROXY_PORT),
    credential_port: PortSchema.default(GATEWAY_CREDENTIAL_PORT),
    /** UDP port of the refusing DNS server the agent's lookups go to (dns.ts); null runs none. */
    dns_port: PortSchema.nullable().default(null),
    /** UDP port of the network watch's report receiver (netwatch-reports.ts); null takes no reports. */
    netwatch_port: PortSchema.nullable().default(null),
    allow: z.array(z.string()).default([]),
    entries: z.array(EntrySchema).default([]),
    /** Operator-pinned names: resolved here instead of DNS, and exempt from the private-address block. */
    extra_hosts: z
      .record(
        z.string().refine((ip) => isIP(ip) !== 0 || ip === HOST_GATEWAY, 'must be an IP address or "host-gateway"'),
      )
      .default({}),
    routes: z.array(RouteSchema).default([]),
    /** The ssh-agent the bottle signs with: its port and the ids of the keys (in the secrets file) it holds. */
    ssh_agent: z
      .object({ port: PortSchema, keys: z.array(z.string().min(1)).min(1) })
      .strict()
      .nullable()
      .default(null),
    /**
     * The bottle's budget: its unit and limit, what earlier runs spent of it, and a USD budget's prices.
     * Once spent, Messages API calls through the anthropic-base-url route are refused (usage-meter.ts).
     */
    budget: z
      .object({
        unit: z.enum(BUDGET_UNITS),
        limit: z.number().nonnegative().finite(),
        spent: z.number().nonnegative().finite(),
        prices: PriceTableSchema.optional(),
      })
      .strict()
      .nullable()
      .default(null),
    /** Inspection (scan/): credential shapes block or are only recorded; held secrets and canaries always block. */
    dlp: z
      .object({
        mode: z.enum(['block', 'audit']).default('block'),
        /** Kinds of this bottle's decoy credentials; each value is in the secrets file as `canary.<kind>`. */
        canaries: z.array(z.string().regex(/^[a-z0-9_]+$/)).default([]),
      })
      .strict()
      .default({}),
    limits: z
      .object({
        max_header_bytes: z.number().int().min(1024).default(32768),
        requests_per_minute: z.number().int().positive().default(600),
      })
      .strict()
      .default({}),
  })
  .strict()
  .superRefine((config, ctx) => {
    config.allow.forEach((raw, index) => {
      try {
        parseHostPattern(raw);
      } catch (err) {
        const why = err instanceof HostPatternError ? err.message : String(err);
        ctx.addIssue({ code: 'custom', path: ['allow', index], message: `${JSON.stringify(raw)}: ${why}` });
      }
    });
    config.entries.forEach((entry, index) => {
      if (!config.allow.includes(entry.host))
        ctx.addIssue({ code: 'custom', path: ['entries', index, 'host'], message: 'not in allow' });
      if (!entry.inspect && (entry.methods || entry.paths))
        ctx.addIssue({ code: 'custom', path: ['entries', index], message: 'method and path rules need inspection' });
    });
    const ids = new Set<string>();
    const pinned = new Set(Object.keys(config.extra_hosts).map((h) => h.toLowerCase()));
    config.routes.forEach((route, index) => {
      if (ids.has(route.id))
        ctx.addIssue({ code: 'custom', path: ['routes', index, 'id'], message: `duplicate route id ${route.id}` });
      ids.add(route.id);
      if (!route.upstream) return;
      const url = new URL(route.upstream);
      // Plain http would send the real secret in clear text; only an operator-pinned
      // name (a local stand-in upstream) may use it.
      if (url.protocol === 'http:' && !pinned.has(url.hostname.toLowerCase())) {
        ctx.addIssue({
          code: 'custom',
          path: ['routes', index, 'upstream'],
          message: `http upstream ${url.hostname} is only allowed for a name mapped in extra_hosts; use https`,
        });
      } else if (url.protocol !== 'http:' && url.protocol !== 'https:') {
        ctx.addIssue({
          code: 'custom',
          path: ['routes', index, 'upstream'],
          message: 'upstream must be an http(s) URL',
        });
      }
    });
    if (config.routes.filter((r) => r.role === 'anthropic-base-url').length > 1) {
      ctx.addIssue({ code: 'custom', path: ['routes'], message: 'at most one anthropic-base-url route' });
    }
  });
export type GatewayConfig = z.infer<typeof GatewayConfigSchema>;
export type GatewayConfigInput = z.input<typeof GatewayConfigSchema>;

/** Route id -> secret value. Never logged, never echoed. */
export const GatewaySecretsSchema = z.record(z.string().min(1));
export type GatewaySecrets = z.infer<typeof GatewaySecretsSchema>;

/** Where a canary's value sits in the secrets file. */
export const canarySecretId = (kind: string): string => `canary.${kind}`;

export class GatewayConfigError extends Error {
  override name = 'GatewayConfigError';
}

/** Parses and checks the config; every route must have its secret. Messages never contain secret values. */
export function validateGatewayFiles(
  configJson: unknown,
  secretsJson: unknown,
): { config: GatewayConfig; secrets: GatewaySecrets } {
  const config = GatewayConfigSchema.safeParse(configJson);
  if (!config.success) throw new GatewayConfigError(`invalid gateway config: ${describeIssues(config.error)}`);
  const secrets = GatewaySecretsSchema.safeParse(secretsJson);
  // Report only paths: a zod message about a secrets file could quote the value.
  if (!secrets.success) {
    throw new GatewayConfigError(
      'invalid gateway secrets: each entry must be a non-empty string ' +
        `(${secrets.error.issues.map((i) => i.path.join('.')).join(', ')})`,
    );
  }
  const missing = config.data.routes.filter((r) => !(r.id in secrets.data)).map((r) => r.id);
  if (missing.length > 0) throw new GatewayConfigError(`no secret for route(s): ${missing.join(', ')}`);
  const missingCanaries = config.data.dlp.canaries.filter((kind) => !(canarySecretId(kind) in secrets.data));
  if (missingCanaries.length > 0) throw new GatewayConfigError(`no value for canaries: ${missingCanaries.join(', ')}`);
  const missingKeys = (config.data.ssh_agent?.keys ?? []).filter((id) => !(id in secrets.data));
  if (missingKeys.length > 0) throw new GatewayConfigError(`no secret for ssh key(s): ${missingKeys.join(', ')}`);
  return { config: config.data, secrets: secrets.data };
}

function describeIssues(error: z.ZodError): string {
  return error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
}

/**
 * Reads both files. A bottle without credential routes may have no secrets
 * file at all; a route whose secret is missing is still refused by
 * validateGatewayFiles.
 */
export function readGatewayFiles(
  configPath: string,
  secretsPath: string,
  hostsPath = '/etc/hosts',
): { config: GatewayConfig; secrets: GatewaySecrets } {
  const files = validateGatewayFiles(readJsonFile(configPath, 'config'), readJsonFile(secretsPath, 'secrets', {}));
  const targets = Object.values(files.config.extra_hosts);
  if (!targets.includes(HOST_GATEWAY)) return files;
  let hostsFile: string;
  try {
    hostsFile = readFileSync(hostsPath, 'utf8');
  } catch (err) {
    throw new GatewayConfigError(
      `cannot read ${hostsPath} for host-gateway: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
    );
  }
  try {
    return {
      ...files,
      config: { ...files.config, extra_hosts: resolveHostGateway(files.config.extra_hosts, hostsFile) },
    };
  } catch (err) {
    throw new GatewayConfigError((err as Error).message);
  }
}

function readJsonFile(path: string, what: string, whenMissing?: unknown): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' && whenMissing !== undefined) return whenMissing;
    throw new GatewayConfigError(
      `cannot read gateway ${what} file ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
    );
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new GatewayConfigError(`gateway ${what} file ${path} is not valid JSON`);
  }
}
