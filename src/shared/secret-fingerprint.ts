import { createHmac } from 'node:crypto';

/**
 * How a secret is named wherever it is recorded (decision details, alarms, capability reasons, DNS
 * names): its class and a short keyed hash, never its value. The key belongs to the gateway run, so a
 * fingerprint in the log cannot be checked against guessed values by whoever reads the log.
 */
export function secretFingerprint(secretClass: string, value: string | Buffer, key: Buffer): string {
  const hash = createHmac('sha256', key).update(value).digest('hex').slice(0, 12);
  return `${secretClass}:${hash}`;
}
