import type { Duplex } from 'node:stream';
import { MAX_CLIENT_HELLO_BYTES, parseClientHello } from './client-hello.js';
import type { DenialReason } from './protocol.js';
import { canonicalHost } from './egress-policy.js';

/**
 * Holds a new tunnel's client bytes until the first message is judged: a TLS
 * ClientHello must name the host the tunnel was opened for (otherwise an
 * allowlisted CONNECT could carry TLS to any virtual host behind the same
 * front, i.e. domain fronting). Non-TLS streams pass; a ClientHello without
 * SNI passes (nothing to compare). Only the verdict releases the bytes.
 */
export type TunnelVerdict =
  | { ok: true; buffered: Buffer }
  | { ok: false; reason: DenialReason; detail: string };

export const CLIENT_HELLO_TIMEOUT_MS = 10_000;

export function inspectTunnelStart(
  client: Duplex,
  head: Buffer,
  connectHost: string,
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
    const hello = parseClientHello(buffered);
    switch (hello.status) {
      case 'incomplete':
        if (buffered.length > MAX_CLIENT_HELLO_BYTES) {
          finish({ ok: false, reason: 'bad_request', detail: 'TLS ClientHello too large' });
        } else if (buffered.length > 0 && !timer) {
          // The clock runs only once the client has started talking: a server-first protocol may wait.
          timer = setTimeout(() => finish({ ok: false, reason: 'bad_request', detail: 'TLS ClientHello incomplete' }), timeoutMs);
        }
        return;
      case 'not_tls':
        finish({ ok: true, buffered });
        return;
      case 'malformed':
        finish({ ok: false, reason: 'bad_request', detail: 'malformed TLS ClientHello' });
        return;
      case 'parsed':
        if (hello.serverName === null || canonicalHost(hello.serverName) === canonicalHost(connectHost)) {
          finish({ ok: true, buffered });
        } else {
          finish({ ok: false, reason: 'tls_sni_mismatch', detail: `TLS server name ${JSON.stringify(hello.serverName)} is not the CONNECT host` });
        }
    }
  };

  function onData(chunk: Buffer) {
    buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
    judge();
  }
  function onEnd() {
    // The client half-closed before anything decisive: forward what there is.
    finish({ ok: true, buffered });
  }

  client.on('data', onData);
  client.on('end', onEnd);
  judge();
}
