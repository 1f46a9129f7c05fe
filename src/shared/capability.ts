import { z } from 'zod';

/**
 * A capability request: what an agent asks the operator for (one more egress
 * host, or a changed Dockerfile) and why. One shape for every place that
 * holds one: the gateway that receives it, the decision line it prints, the
 * `capability.requested` event, the machine's pending request and the CLI.
 */
export const CAPABILITY_KINDS = ['egress', 'dockerfile'] as const;
export type CapabilityKind = (typeof CAPABILITY_KINDS)[number];

export const MAX_DOCKERFILE_CHARS = 100_000;
export const MAX_REASON_CHARS = 4000;
/** Most methods and path globs one method/path grant names. */
export const MAX_GRANT_RULES = 16;

/**
 * A method/path grant's scope: the methods (all when absent) on the path globs (all when absent) an egress
 * request asks for on a host already on the allowlist. The gateway checks them like a manifest entry's rules.
 */
const GrantListSchema = z.array(z.string().min(1).max(500)).min(1).max(MAX_GRANT_RULES);

/** What is asked for, as recorded once the gateway has given it an id. */
export const CapabilityRequestSchema = z.object({
  request_id: z.string().min(1),
  kind: z.enum(CAPABILITY_KINDS),
  host: z.string().optional(),
  port: z.number().int().min(0).max(65535).optional(),
  dockerfile: z.string().optional(),
  reason: z.string(),
  /** A method/path grant on an allowlisted host: the methods asked for (absent: a host grant, or any method). */
  methods: z.array(z.string()).optional(),
  /** A method/path grant's path globs (absent: any path). */
  paths: z.array(z.string()).optional(),
});
export type CapabilityRequest = z.infer<typeof CapabilityRequestSchema>;

/** The body an agent posts: the request without an id, checked strictly. */
export const CapabilityAskSchema = z
  .object({
    kind: z.enum(CAPABILITY_KINDS),
    host: z.string().min(1).max(253).optional(),
    port: z.number().int().min(1).max(65535).optional(),
    dockerfile: z.string().min(1).max(MAX_DOCKERFILE_CHARS).optional(),
    reason: z.string().min(1).max(MAX_REASON_CHARS),
    methods: GrantListSchema.optional(),
    paths: GrantListSchema.optional(),
  })
  .strict()
  .superRefine((request, ctx) => {
    if (request.kind === 'egress' && !request.host) {
      ctx.addIssue({ code: 'custom', path: ['host'], message: 'an egress request names the host' });
    }
    if (request.kind === 'dockerfile' && !request.dockerfile) {
      ctx.addIssue({
        code: 'custom',
        path: ['dockerfile'],
        message: 'a dockerfile request carries the full new Dockerfile',
      });
    }
    if (request.kind !== 'egress' && (request.methods || request.paths)) {
      ctx.addIssue({ code: 'custom', path: ['methods'], message: 'methods and paths belong to an egress request' });
    }
  });
export type CapabilityAsk = z.infer<typeof CapabilityAskSchema>;

type Scoped = Pick<CapabilityRequest, 'methods' | 'paths'>;

/** Whether an egress request asks for a method/path grant on an allowlisted host rather than for a host. */
export function isScopedGrant(request: Scoped): boolean {
  return request.methods !== undefined || request.paths !== undefined;
}

/** A method/path grant's methods and paths, or undefined for a host grant. */
export function grantScope(request: Scoped): { methods?: string[]; paths?: string[] } | undefined {
  if (!isScopedGrant(request)) return undefined;
  return {
    ...(request.methods !== undefined ? { methods: request.methods } : {}),
    ...(request.paths !== undefined ? { paths: request.paths } : {}),
  };
}

/** A grant's scope as shown to the operator, e.g. `methods POST paths /acme/app.git/git-receive-pack`; '' for none. */
export function grantScopeText(request: Scoped): string {
  const parts = [
    ...(request.methods ? [`methods ${request.methods.join(',')}`] : []),
    ...(request.paths ? [`paths ${request.paths.join(',')}`] : []),
  ];
  return parts.join(' ');
}

/** What a request asks for, e.g. `egress pypi.org:443`, `egress github.com:443 methods POST` or `dockerfile`. */
export function capabilityTarget(request: Pick<CapabilityRequest, 'kind' | 'host' | 'port'> & Scoped): string {
  if (!request.host) return request.kind;
  const scope = grantScopeText(request);
  return `${request.kind} ${request.host}${request.port ? `:${request.port}` : ''}${scope ? ` ${scope}` : ''}`;
}

/** The allowlist entry an approved egress request adds: the port only when it is not a default one. */
export function egressAllowEntry(request: Pick<CapabilityRequest, 'host' | 'port'>): string | undefined {
  if (!request.host) return undefined;
  const port = request.port;
  return port && port !== 443 && port !== 80 ? `${request.host}:${port}` : request.host;
}
