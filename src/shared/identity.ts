import { randomInt } from 'node:crypto';
import { UsageError } from './errors.js';

/** Agent names double as Docker name prefixes, so they stay within [a-z0-9_-]. */
export const AGENT_NAME_PATTERN = /^[a-z0-9][a-z0-9_-]{0,39}$/;
export const IDENTITY_SUFFIX_LENGTH = 5;
export const IDENTITY_PATTERN = /^([a-z0-9][a-z0-9_-]{0,39})-([0-9a-z]{5})$/;

const ALPHABET = '0123456789abcdefghijklmnopqrstuvwxyz';

/** `<agent>-<5 chars of [0-9a-z]>`, fresh per start (crypto randomness: two starts never share one by design). */
export function mintIdentity(agent: string): string {
  let suffix = '';
  for (let i = 0; i < IDENTITY_SUFFIX_LENGTH; i++) suffix += ALPHABET[randomInt(ALPHABET.length)];
  return `${agent}-${suffix}`;
}

export interface ParsedIdentity {
  identity: string;
  agent: string;
  suffix: string;
}

/**
 * Validates an identity given on the command line before it is used to build
 * any path, Redis key or Docker name. `knownAgents`, when given, must contain
 * the identity's agent.
 */
export function parseIdentity(raw: string, knownAgents?: readonly string[]): ParsedIdentity {
  const m = IDENTITY_PATTERN.exec(raw);
  if (!m) {
    throw new UsageError(
      `invalid identity ${JSON.stringify(raw)}: expected <agent>-<5 chars of [0-9a-z]>, e.g. dev-a1b2c`,
    );
  }
  const [, agent, suffix] = m;
  if (knownAgents && !knownAgents.includes(agent)) {
    throw new UsageError(
      `invalid identity ${JSON.stringify(raw)}: no agent named ${JSON.stringify(agent)} in the manifest`,
    );
  }
  return { identity: raw, agent, suffix };
}
