import { readFileSync } from 'node:fs';

/**
 * Which build of claude-bottle this process runs: written to dist/build-id.txt
 * by scripts/build-cli.mjs (a hash of the bundled CLI/worker and the gateway).
 * Workers publish it in their heartbeat so a CLI can tell that the local
 * worker still runs code from before an upgrade. Compiled modules sit one
 * folder below dist/ (dist/cli-bundle/, dist/shared/); running from sources
 * there is no such file and the build is "source".
 * `CLAUDE_BOTTLE_BUILD_ID` overrides it (tests simulate an upgrade with it).
 */
let cached: string | undefined;

export function buildId(env: NodeJS.ProcessEnv = process.env): string {
  if (env.CLAUDE_BOTTLE_BUILD_ID) return env.CLAUDE_BOTTLE_BUILD_ID;
  if (cached === undefined) {
    try {
      cached = readFileSync(new URL('../build-id.txt', import.meta.url), 'utf8').trim() || 'source';
    } catch {
      cached = 'source';
    }
  }
  return cached;
}
