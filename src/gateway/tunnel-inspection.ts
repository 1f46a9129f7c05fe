import type { Duplex } from 'node:stream';
import { isIP } from 'node:net';
import { MAX_CLIENT_HELLO_BYTES, parseClientHello } from './client-hello.js';
import type { DenialReason } from './protocol.js';
import { canonicalHost } from './egress-policy.js';

/**
 * Holds a new tunnel's client bytes until the first message is judged. A
 * tunnel opened for one host must not carry traffic for another (domain
 * fronting, or a plain `Host: evil.test` behind an allowlisted address), so
 * the client must open with something that names the CONNECT host:
 *
 * - a TLS ClientHello whose server name (SNI) is the CONNECT host; without a
 *   server name only when the CONNECT host is an IP address (no name exists);
 * - an HTTP/1 request line: the proxy then serves the tunnel request by
 *   request and checks every Host header (forward-proxy.ts);
 * - an SSH identification line, only on port 22 (SSH names no host, and the
 *   design sends SSH to allowlisted `host:22` through the gateway).
 *
 * Anything else is refused with a reason. Only the verdict releases the bytes.
 */
export type TunnelKind = 'tls' | 'http' | 'ssh';

export type TunnelVerdict =
  { ok: true; kind: TunnelKind; buffered: Buffer } | { ok: false; reason: DenialReason; detail: string };

export interface TunnelTarget {
  host: string;
  port: number;
}

export const CLIENT_HELLO_TIMEOUT_MS = 10_000;
export const SSH_PORT = 22;

const TLS_HANDSHAKE_RECORD = 22;
const SSH_IDENTIFICATION = /^SSH-(2\.0|1\.99)-/;
const SSH_PREFIXES = ['SSH-2.0-', 'SSH-1.99-'];
/** An HTTP/1 request line: token method, a target without spaces, the version. */
const HTTP_REQUEST_LINE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+ [\x21-\x7e]+ HTTP\/1\.[01]\r?$/;
/** What a request line can look like before its end has arrived. */
const HTTP_REQUEST_LINE_START = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+( [\x21-\x7e]*( [HTP/.01]*\r?)?)?$/;

export function inspectTunnelStart(
  client: Duplex,
  head: Buffer,
  target: TunnelTarget,
  decide: (verdict: TunnelVerdict) => void,
  timeoutMs = CLIENT_HELLO_TIMEOUT_MS,
): void {
  let buffered = head;
  let decided = false;
  let timer: NodeJS.Timeout | undefined;

  const finish = (verdict: TunnelVerdict) => {
    if (decided) return;
    decided = true;
    if (timer) clearTimeout(timer);
    client.off('data', onData);
    client.off('end', onEnd);
    client.pause();
    decide(verdict);
  };

  const judge = () => {
    const verdict = judgeTunnelStart(buffered, target);
    if (verdict !== 'incomplete') {
      finish(verdict);
    } else if (buffered.length > MAX_CLIENT_HELLO_BYTES) {
      finish({ ok: false, reason: 'bad_request', detail: 'first message too large' });
    } else if (buffered.length > 0 && !timer) {
      // The clock runs only once the client has started talking: a server-first protocol may wait.
      timer = setTimeout(
        () => finish({ ok: false, reason: 'bad_request', detail: 'first message incomplete' }),
        timeoutMs,
      );
    }
  };

  function onData(chunk: Buffer) {
    buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
    judge();
  }
  function onEnd() {
    // The client half-closed before anything that names the CONNECT host: nothing is forwarded.
    finish({
      ok: false,
      reason: 'tunnel_unrecognized',
      detail: 'the client closed before sending a recognisable first message',
    });
  }

  client.on('data', onData);
  client.on('end', onEnd);
  judge();
}

/** The verdict on the bytes a tunnel's client sent first, or 'incomplete' while more are needed. */
export function judgeTunnelStart(bytes: Buffer, target: TunnelTarget): TunnelVerdict | 'incomplete' {
  if (bytes.length === 0) return 'incomplete';
  if (bytes[0] === TLS_HANDSHAKE_RECORD) return judgeClientHello(bytes, target);
  const firstLineEnd = bytes.indexOf(0x0a);
  const firstLine = bytes.subarray(0, firstLineEnd < 0 ? bytes.length : firstLineEnd).toString('latin1');
  const complete = firstLineEnd >= 0;

  if (
    firstLine.length > 0 &&
    SSH_PREFIXES.some((prefix) => prefix.startsWith(firstLine) || firstLine.startsWith(prefix))
  ) {
    if (!SSH_IDENTIFICATION.test(firstLine)) return 'incomplete';
    if (target.port === SSH_PORT) return { ok: true, kind: 'ssh', buffered: bytes };
    return { ok: false, reason: 'tunnel_unrecognized', detail: `SSH is only tunnelled to port ${SSH_PORT}` };
  }
  if (complete && HTTP_REQUEST_LINE.test(firstLine)) return { ok: true, kind: 'http', buffered: bytes };
  if (!complete && HTTP_REQUEST_LINE_START.test(firstLine)) return 'incomplete';
  return { ok: false, reason: 'tunnel_unrecognized', detail: 'the tunnel carries neither TLS, HTTP nor SSH' };
}

function judgeClientHello(bytes: Buffer, target: TunnelTarget): TunnelVerdict | 'incomplete' {
  const hello = parseClientHello(bytes);
  switch (hello.status) {
    case 'incomplete':
      return 'incomplete';
    case 'not_tls':
      return { ok: false, reason: 'tunnel_unrecognized', detail: 'the tunnel carries neither TLS, HTTP nor SSH' };
    case 'malformed':
      return { ok: false, reason: 'bad_request', detail: 'malformed TLS ClientHello' };
    case 'parsed':
      if (hello.serverName === null) {
        // An IP address has no name to send; any named host must send it.
        if (isIP(target.host)) return { ok: true, kind: 'tls', buffered: bytes };
        return {
          ok: false,
          reason: 'tls_no_sni',
          detail: 'the TLS ClientHello names no server, so it cannot be matched to the CONNECT host',
        };
      }
      if (canonicalHost(hello.serverName) === canonicalHost(target.host))
        return { ok: true, kind: 'tls', buffered: bytes };
      return {
        ok: false,
        reason: 'tls_sni_mismatch',
        detail: `TLS server name ${JSON.stringify(hello.serverName)} is not the CONNECT host`,
      };
  }
}
