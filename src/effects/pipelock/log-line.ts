import { isIP } from 'node:net';
import { z } from 'zod';

/**
 * One line of pipelock's audit log (`logging.format: json`,
 * `output: stdout`) turned into an egress decision the worker can record as
 * `egress.allowed` / `egress.denied`.
 *
 * The line shape comes from pipelock's audit logger
 * (internal/audit/logger.go, zerolog JSON): every line carries `event`; a
 * CONNECT decision names its destination in `target` ("host:port") with
 * method CONNECT, a plain-HTTP decision in `url`. Decision events:
 * - `tunnel_open`  a CONNECT tunnel was allowed (logged when include_allowed);
 * - `forward_http` an absolute-URI forward-proxy request was allowed;
 * - `allowed`      a fetch-endpoint request was allowed;
 * - `blocked`      any refusal, with `scanner` (which check) and `reason`.
 * Everything else (startup, tunnel_close, anomaly, config_reload, ...) is not
 * a decision and yields null, as does anything that is not such a line.
 */
export interface PipelockDecision {
  decision: 'allowed' | 'denied';
  host: string;
  port: number;
  method: string;
  reason: string;
}

const ALLOWED_EVENTS = new Set(['tunnel_open', 'forward_http', 'allowed']);
const DENIED_EVENTS = new Set(['blocked']);

const LogLineSchema = z
  .object({
    event: z.string(),
    method: z.string().optional(),
    url: z.string().optional(),
    target: z.string().optional(),
    scanner: z.string().optional(),
    reason: z.string().optional(),
  })
  .passthrough();

export function parsePipelockLogLine(line: string): PipelockDecision | null {
  let json: unknown;
  try {
    json = JSON.parse(line.trim());
  } catch {
    return null;
  }
  const parsed = LogLineSchema.safeParse(json);
  if (!parsed.success) return null;
  const entry = parsed.data;
  const allowed = ALLOWED_EVENTS.has(entry.event);
  if (!allowed && !DENIED_EVENTS.has(entry.event)) return null;

  const destination = entry.target ? fromTarget(entry.target) : entry.url ? fromUrl(entry.url) : null;
  if (!destination) return null;
  const method = (entry.method || (entry.target ? 'CONNECT' : 'GET')).toUpperCase();
  const reason = allowed
    ? `pipelock ${entry.event}`
    : [entry.scanner, entry.reason].filter(Boolean).join(': ') || 'blocked by pipelock';
  return { decision: allowed ? 'allowed' : 'denied', host: destination.host, port: destination.port, method, reason };
}

/** `host:port`, `[v6]:port`; a bare host means the CONNECT default, 443. */
function fromTarget(target: string): { host: string; port: number } | null {
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(target);
  if (bracketed) return withPort(bracketed[1], bracketed[2], 443);
  if (isIP(target) === 6) return withPort(target, undefined, 443);
  const colon = target.lastIndexOf(':');
  if (colon < 0) return withPort(target, undefined, 443);
  return withPort(target.slice(0, colon), target.slice(colon + 1), 443);
}

function fromUrl(raw: string): { host: string; port: number } | null {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return null;
  }
  const fallback = url.protocol === 'https:' || url.protocol === 'wss:' ? 443 : 80;
  return withPort(url.hostname.replace(/^\[|\]$/g, ''), url.port || undefined, fallback);
}

function withPort(host: string, portText: string | undefined, fallback: number): { host: string; port: number } | null {
  const normalized = host.toLowerCase().replace(/\.$/, '');
  if (normalized === '') return null;
  if (portText === undefined) return { host: normalized, port: fallback };
  if (!/^\d{1,5}$/.test(portText)) return null;
  const port = Number(portText);
  if (port < 1 || port > 65535) return null;
  return { host: normalized, port };
}

/** pipelock's `{"event":"startup",...,"message":"pipelock started"}` line: the listener is up. */
export function isPipelockStartupLine(line: string): boolean {
  try {
    const parsed = LogLineSchema.safeParse(JSON.parse(line.trim()));
    return parsed.success && parsed.data.event === 'startup';
  } catch {
    return false;
  }
}
