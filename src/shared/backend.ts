import { UsageError } from './errors.js';

/** The container backends this tool can run bottles on, chosen with CLAUDE_BOTTLE_BACKEND. */
export const SUPPORTED_BACKENDS = ['docker'] as const;
export type Backend = (typeof SUPPORTED_BACKENDS)[number];

/**
 * `CLAUDE_BOTTLE_BACKEND`, default docker. The original tool selected its backend with it; a value
 * this one cannot honour is refused rather than ignored, so nobody believes a bottle runs elsewhere.
 */
export function chooseBackend(env: NodeJS.ProcessEnv = process.env): Backend {
  const asked = env.CLAUDE_BOTTLE_BACKEND;
  if (asked === undefined || asked === '') return 'docker';
  const supported = SUPPORTED_BACKENDS.find((b) => b === asked);
  if (supported) return supported;
  throw new UsageError(
    `CLAUDE_BOTTLE_BACKEND=${JSON.stringify(asked)} is not supported; supported: ${SUPPORTED_BACKENDS.join(', ')}`,
  );
}
