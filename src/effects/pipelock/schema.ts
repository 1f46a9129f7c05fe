import { isIP } from 'node:net';
import { z } from 'zod';

/**
 * A zod model of the part of pipelock's YAML config that claude-bottle
 * writes, taken from pipelock's configuration reference
 * (github.com/luckyPipewrench/pipelock, docs/configuration.md) and its
 * strict preset (configs/strict.yaml). Pipelock refuses unknown fields at
 * load, so every object here is strict too: a key we invent would stop the
 * sidecar from starting, and this model catches it in a unit test instead.
 * Only keys we emit are modelled; pipelock has many more.
 */

/** Documented label rules for pipelock host lists: ASCII, legal DNS labels, no port, no URL. */
const HOST_LABEL = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;

function isHostName(host: string): boolean {
  if (host.length === 0 || host.length > 253) return false;
  return host.split('.').every((label) => label.length <= 63 && HOST_LABEL.test(label));
}

/**
 * One entry of a pipelock host list (`api_allowlist`, `trusted_domains`):
 * an exact host, `*.domain` (which pipelock documents as matching the apex
 * too), or an exact IP literal. Ports and URLs are refused by pipelock.
 * Pipelock additionally refuses wildcards over a public suffix (`*.co.uk`);
 * that needs the public suffix list and is left to pipelock's own load check,
 * except for the single-label case (`*.com`), refused here.
 */
export const PipelockHostPatternSchema = z.string().superRefine((entry, ctx) => {
  if (isIP(entry) !== 0) return;
  const wildcard = entry.startsWith('*.');
  const host = wildcard ? entry.slice(2) : entry;
  if (host !== host.toLowerCase())
    ctx.addIssue({ code: z.ZodIssueCode.custom, message: `${JSON.stringify(entry)} must be lowercase` });
  else if (!isHostName(host))
    ctx.addIssue({
      code: z.ZodIssueCode.custom,
      message: `${JSON.stringify(entry)} is not a legal host name (no port, URL or interior wildcard)`,
    });
  else if (wildcard && !host.includes('.'))
    ctx.addIssue({ code: z.ZodIssueCode.custom, message: `${JSON.stringify(entry)} covers a whole top-level domain` });
});

/** `address:port` for a listener; pipelock's examples use `127.0.0.1:8888` and `0.0.0.0:8888`. */
export const PipelockListenSchema = z
  .string()
  .regex(/^(\d{1,3}(\.\d{1,3}){3}):(\d{1,5})$/, 'must be "ipv4:port"')
  .refine((listen) => {
    const port = Number(listen.split(':')[1]);
    return port >= 1 && port <= 65535;
  }, 'port must be 1..65535');

const CidrSchema = z.string().refine((cidr) => {
  const [address, prefix, extra] = cidr.split('/');
  if (extra !== undefined || prefix === undefined || !/^\d{1,3}$/.test(prefix)) return false;
  const family = isIP(address);
  return family !== 0 && Number(prefix) <= (family === 4 ? 32 : 128);
}, 'must be a CIDR such as "10.0.0.0/8"');

export const PipelockConfigSchema = z
  .object({
    /** "Config schema version (currently 1)". */
    version: z.literal(1),
    /** strict = "Allowlist-only. Only api_allowlist domains pass." */
    mode: z.enum(['strict', 'balanced', 'audit']),
    /** false turns every block into a warning. */
    enforce: z.boolean(),
    /** Fix hints in block responses reveal policy to the agent; default false. */
    explain_blocks: z.boolean(),
    api_allowlist: z.array(PipelockHostPatternSchema),
    /** The one listener; the CONNECT / absolute-URI forward proxy is served on it too. */
    fetch_proxy: z.object({ listen: PipelockListenSchema }).strict(),
    forward_proxy: z
      .object({
        /** Requires a restart to change. */
        enabled: z.boolean(),
        /** Verify the TLS ClientHello SNI matches the CONNECT target (blocks domain fronting). */
        sni_verification: z.boolean(),
      })
      .strict(),
    request_body_scanning: z
      .object({
        enabled: z.boolean(),
        action: z.enum(['warn', 'block']),
        scan_headers: z.boolean(),
        header_mode: z.enum(['sensitive', 'all']),
        sensitive_headers: z.array(z.string().min(1)),
      })
      .strict(),
    dlp: z
      .object({
        /** Flags URLs carrying any high-entropy value from pipelock's own environment. */
        scan_env: z.boolean(),
        /** Keep the built-in credential patterns. */
        include_defaults: z.boolean(),
      })
      .strict(),
    logging: z
      .object({
        format: z.enum(['json', 'text']),
        output: z.enum(['stdout', 'file', 'both']),
        include_allowed: z.boolean(),
        include_blocked: z.boolean(),
      })
      .strict(),
    /** Private/reserved ranges refused after DNS resolution (SSRF protection). */
    internal: z.array(CidrSchema),
    /** Names exempt from the internal-range check; in strict mode they must also be allowlisted to be reachable. */
    trusted_domains: z.array(PipelockHostPatternSchema),
  })
  .strict();
export type PipelockConfig = z.infer<typeof PipelockConfigSchema>;
