import type { ScanFinding } from '../request-scanner.js';
import type { NeedleHit } from './needles.js';

/** Where in the traffic something was found, as recorded in a decision's detail. */
export type FoundWhere = 'url' | 'header' | 'body' | 'hostname' | 'frame' | 'connect' | 'response' | 'split_requests';

/** A held secret or canary: always blocked, whatever the bottle's dlp mode. */
export function heldSecretFinding(hit: NeedleHit, where: FoundWhere): ScanFinding {
  const { secret, encoding } = hit.needle;
  return {
    action: 'block',
    reason: secret.class,
    detail: {
      class: secret.class,
      rule: encoding === 'raw' ? secret.rule : `${secret.rule}/${encoding}`,
      where,
      fingerprint: secret.fingerprint,
    },
  };
}

export function unscannableFinding(rule: string): ScanFinding {
  return { action: 'block', reason: 'body_unscannable', detail: { class: 'body_unscannable', rule, where: 'body' } };
}
