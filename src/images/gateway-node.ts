import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { RuntimeFailure } from '../shared/errors.js';
import { bottleHome } from '../shared/paths.js';
import { repoRoot } from './build-context.js';

const GatewayNodePinSchema = z.object({ package: z.string().min(1), version: z.string().min(1) });

/** The `claudeBottle.gatewayNode` pin of this installation's package.json. */
function gatewayNodePin(root: string): z.infer<typeof GatewayNodePinSchema> {
  const pin = GatewayNodePinSchema.safeParse(
    (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { claudeBottle?: { gatewayNode?: unknown } })
      .claudeBottle?.gatewayNode,
  );
  if (!pin.success)
    throw new RuntimeFailure(`package.json has no valid claudeBottle.gatewayNode pin; reinstall claude-bottle`);
  return pin.data;
}

/**
 * Where the gateway's Node binary may be, in the order looked at: `vendor/` of a checkout (fetched by
 * scripts/fetch-gateway-node.sh), then the tool's cache under CLAUDE_BOTTLE_HOME, where an installed
 * package keeps it (its own folder may be read-only, and is replaced by every upgrade).
 */
export function gatewayNodeCandidates(env: NodeJS.ProcessEnv = process.env): { vendor: string; cache: string } {
  const root = repoRoot();
  const { package: pkg, version } = gatewayNodePin(root);
  return {
    vendor: join(root, 'vendor', `${pkg}-${version}`, 'node'),
    cache: join(bottleHome(env), 'cache', 'gateway-node', `${pkg}-${version}`, 'node'),
  };
}

/**
 * The gateway's Node binary, as `claudeBottle.gatewayNode` pins it. When neither place has it, it is
 * fetched into the cache (npm pack of the pinned package, checked against its pinned integrity): once
 * per pin and state folder.
 */
export function gatewayNodePath(env: NodeJS.ProcessEnv = process.env): string {
  const { vendor, cache } = gatewayNodeCandidates(env);
  if (existsSync(vendor)) return vendor;
  if (existsSync(cache)) return cache;
  const script = join(repoRoot(), 'scripts', 'fetch-gateway-node.sh');
  const fetched = spawnSync('bash', [script, join(cache, '..')], { stdio: ['ignore', 'ignore', 'inherit'], env });
  if (fetched.status !== 0 || !existsSync(cache))
    throw new RuntimeFailure(
      `the gateway's Node binary is missing and could not be fetched into ${cache}: ` +
        `run \`bash ${script} ${join(cache, '..')}\` (it needs npm and the npm registry)`,
    );
  return cache;
}
