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

/** What is asked for, as recorded once the gateway has given it an id. */
export const CapabilityRequestSchema = z.object({
  request_id: z.string().min(1),
  kind: z.enum(CAPABILITY_KINDS),
  host: z.string().optional(),
  port: z.number().int().min(0).max(65535).optional(),
  dockerfile: z.string().optional(),
  reason: z.string(),
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
  });
export type CapabilityAsk = z.infer<typeof CapabilityAskSchema>;

/** What a request asks for, e.g. `egress pypi.org:443` or `dockerfile`. */
export function capabilityTarget(request: Pick<CapabilityRequest, 'kind' | 'host' | 'port'>): string {
  if (!request.host) return request.kind;
  return `${request.kind} ${request.host}${request.port ? `:${request.port}` : ''}`;
}

/** The allowlist entry an approved egress request adds: the port only when it is not a default one. */
export function egressAllowEntry(request: Pick<CapabilityRequest, 'host' | 'port'>): string | undefined {
  if (!request.host) return undefined;
  const port = request.port;
  return port && port !== 443 && port !== 80 ? `${request.host}:${port}` : request.host;
}
