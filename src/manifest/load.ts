import { readFile, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { UsageError } from '../shared/errors.js';
import { expandHome } from '../shared/paths.js';
import { ManifestError, formatJsonPath, problemsFromZod, type ManifestProblem } from './errors.js';
import { locateJsonSyntaxError } from './json-syntax-error.js';
import { DEFAULT_AGENT_COMMAND, ManifestSchema, type Agent, type Bottle, type Manifest } from './schema.js';

export interface LoadedManifest {
  /** Absolute path of the manifest file. */
  path: string;
  /** Its folder: relative paths inside resolve against it. */
  dir: string;
  manifest: Manifest;
}

export const MANIFEST_ENV = 'CLAUDE_BOTTLE_MANIFEST';

/** `--manifest PATH` > `$CLAUDE_BOTTLE_MANIFEST` > `~/claude-bottle.json`. */
export function manifestPathFrom(opts: { path?: string; env?: NodeJS.ProcessEnv }): string {
  const env = opts.env ?? process.env;
  const chosen = opts.path ?? env[MANIFEST_ENV] ?? join(homedir(), 'claude-bottle.json');
  return resolve(expandHome(chosen));
}

export async function loadManifest(opts: { path?: string; env?: NodeJS.ProcessEnv }): Promise<LoadedManifest> {
  const path = manifestPathFrom(opts);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new UsageError(
        `manifest ${path} not found: create it (see examples/claude-bottle.json), pass --manifest PATH, ` +
          `or set ${MANIFEST_ENV}; the default is ~/claude-bottle.json`,
      );
    }
    if (code === 'EISDIR') throw new UsageError(`manifest ${path} is a folder; point --manifest at the JSON file`);
    throw new UsageError(`manifest ${path} cannot be read: ${(err as Error).message}`);
  }
  const json = parseJsonText(text, path);
  // Files are checked even when the schema fails, so one run lists every problem.
  const missing = await missingReferencedFiles(json, dirname(path));
  let manifest: Manifest;
  try {
    manifest = parseManifest(json, path);
  } catch (err) {
    if (err instanceof ManifestError && missing.length > 0)
      throw new ManifestError(path, [...err.problems, ...missing]);
    throw err;
  }
  if (missing.length > 0) throw new ManifestError(path, missing);
  return { path, dir: dirname(path), manifest };
}

export function parseJsonText(text: string, manifestPath: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    const where = locateJsonSyntaxError(text);
    const detail = where ? `line ${where.line}, column ${where.column}: ${where.message}` : (err as Error).message;
    throw new ManifestError(manifestPath, [
      {
        path: '(file)',
        message: `invalid JSON at ${detail}; fix the syntax (JSON allows no comments or trailing commas)`,
      },
    ]);
  }
}

/**
 * Validates a parsed manifest and resolves its relative paths against the
 * manifest's folder. Pure apart from reading `~`: file existence is checked
 * separately by missingReferencedFiles.
 */
export function parseManifest(json: unknown, manifestPath: string): Manifest {
  if (!isRecord(json)) {
    throw new ManifestError(manifestPath, [
      { path: '(top level)', message: 'the manifest must be a JSON object with "bottles" and "agents" arrays' },
    ]);
  }
  const result = ManifestSchema.safeParse(json);
  const problems = [...(result.success ? [] : problemsFromZod(result.error)), ...crossReferenceProblems(json)];
  if (!result.success || problems.length > 0) throw new ManifestError(manifestPath, problems);
  const dir = dirname(resolve(manifestPath));
  const abs = (p: string) => resolve(dir, expandHome(p));

  const bottles: Bottle[] = result.data.bottles.map(({ runtime: _runtime, ...b }) => ({
    ...b,
    dockerfile: b.dockerfile === undefined ? undefined : abs(b.dockerfile),
    egress: {
      allow: (b.egress?.allow ?? []).map((entry) => (typeof entry === 'string' ? entry : entry.host)),
      entries: (b.egress?.allow ?? []).filter((entry) => typeof entry !== 'string'),
      proxy: b.egress?.proxy ?? 'gateway',
      pipelock_image: b.egress?.pipelock_image,
      dlp: b.egress?.dlp ?? 'block',
    },
    cred_proxy: {
      routes: (b.cred_proxy?.routes ?? []).map((r) => ({
        ...r,
        token_file: r.token_file === undefined ? undefined : abs(r.token_file),
      })),
    },
    ssh: (b.ssh ?? []).map((s) => ({ Host: s.Host, IdentityFile: abs(s.IdentityFile) })),
    extra_hosts: b.extra_hosts ?? {},
    limits: b.limits ?? {},
  }));
  const agents: Agent[] = result.data.agents.map((a) => ({
    ...a,
    prompt: a.prompt === undefined ? undefined : abs(a.prompt),
    skills: (a.skills ?? []).map(abs),
    command: a.command ?? [...DEFAULT_AGENT_COMMAND],
    copy_cwd: a.copy_cwd ?? false,
  }));
  return { bottles, agents };
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Checks that need the whole document (duplicates, agent -> bottle links). They
 * read the raw JSON defensively so they still run when other parts are
 * invalid: all problems are reported in one go.
 */
function crossReferenceProblems(json: Record<string, unknown>): ManifestProblem[] {
  const problems: ManifestProblem[] = [];
  const bottles = Array.isArray(json.bottles) ? json.bottles : [];
  const agents = Array.isArray(json.agents) ? json.agents : [];

  const bottleNames = new Map<string, number>();
  bottles.forEach((b, i) => {
    if (!isRecord(b) || typeof b.name !== 'string') return;
    const first = bottleNames.get(b.name);
    if (first !== undefined)
      problems.push({
        path: formatJsonPath(['bottles', i, 'name']),
        message: `duplicate bottle name "${b.name}" (also bottles[${first}]); bottle names must be unique`,
      });
    else bottleNames.set(b.name, i);
  });

  const agentNames = new Map<string, number>();
  agents.forEach((a, i) => {
    if (!isRecord(a)) return;
    if (typeof a.name === 'string') {
      const first = agentNames.get(a.name);
      if (first !== undefined)
        problems.push({
          path: formatJsonPath(['agents', i, 'name']),
          message: `duplicate agent name "${a.name}" (also agents[${first}]); agent names must be unique`,
        });
      else agentNames.set(a.name, i);
    }
    if (typeof a.bottle === 'string' && !bottleNames.has(a.bottle)) {
      const known = [...bottleNames.keys()];
      problems.push({
        path: formatJsonPath(['agents', i, 'bottle']),
        message: `no bottle named "${a.bottle}"; ${
          known.length ? `known bottles: ${known.join(', ')}` : 'add it to "bottles"'
        }`,
      });
    }
    if (Array.isArray(a.skills)) {
      const seen = new Map<string, number>();
      a.skills.forEach((s, j) => {
        if (typeof s !== 'string' || s === '') return;
        const name = basename(s.replace(/\/+$/, ''));
        if (seen.has(name))
          problems.push({
            path: formatJsonPath(['agents', i, 'skills', j]),
            message: `two skills are named "${name}" (also skills[${seen.get(name)}]); skill folder names must differ`,
          });
        else seen.set(name, j);
      });
    }
  });
  return problems;
}

/**
 * The files a manifest points at must exist when it is loaded, not fail
 * halfway through a launch. Reads the raw JSON defensively (any string where a
 * path belongs is checked) so it can run alongside schema validation.
 */
export async function missingReferencedFiles(json: unknown, manifestDir: string): Promise<ManifestProblem[]> {
  if (!isRecord(json)) return [];
  const abs = (p: string) => resolve(manifestDir, expandHome(p));
  const checks: Array<Promise<ManifestProblem | null>> = [];
  const expect = (path: Array<string | number>, raw: unknown, kind: 'file' | 'dir', what: string, child?: string) => {
    if (typeof raw !== 'string' || raw === '') return;
    const file = child ? join(abs(raw), child) : abs(raw);
    const fix = child
      ? `a skill folder must contain ${child}`
      : 'fix the path (relative paths resolve against the manifest folder)';
    checks.push(
      stat(file).then(
        (s) =>
          kind === 'file' && !s.isFile()
            ? { path: formatJsonPath(path), message: `${what} ${file} is not a file` }
            : kind === 'dir' && !s.isDirectory()
              ? { path: formatJsonPath(path), message: `${what} ${file} is not a folder` }
              : null,
        () => ({ path: formatJsonPath(path), message: `${what} ${file} does not exist; ${fix}` }),
      ),
    );
  };
  const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
  list(json.bottles).forEach((b, i) => {
    if (!isRecord(b)) return;
    expect(['bottles', i, 'dockerfile'], b.dockerfile, 'file', 'dockerfile');
    list(b.ssh).forEach((s, j) => {
      if (isRecord(s)) expect(['bottles', i, 'ssh', j, 'IdentityFile'], s.IdentityFile, 'file', 'IdentityFile');
    });
  });
  list(json.agents).forEach((a, i) => {
    if (!isRecord(a)) return;
    expect(['agents', i, 'prompt'], a.prompt, 'file', 'prompt');
    list(a.skills).forEach((s, j) => {
      expect(['agents', i, 'skills', j], s, 'dir', 'skill folder');
      expect(['agents', i, 'skills', j], s, 'file', 'skill file', 'SKILL.md');
    });
  });
  const results = await Promise.all(checks);
  // A missing skill folder also lacks SKILL.md; one problem per path is enough.
  const seen = new Set<string>();
  return results.filter((p): p is ManifestProblem => {
    if (!p || seen.has(p.path)) return false;
    seen.add(p.path);
    return true;
  });
}

export function findAgent(loaded: LoadedManifest, name: string): { agent: Agent; bottle: Bottle } {
  const agent = loaded.manifest.agents.find((a) => a.name === name);
  if (!agent) {
    const known = loaded.manifest.agents.map((a) => a.name);
    throw new UsageError(
      `no agent named "${name}" in ${loaded.path}; known agents: ${known.length ? known.join(', ') : '(none)'}`,
    );
  }
  const bottle = loaded.manifest.bottles.find((b) => b.name === agent.bottle);
  // parseManifest guarantees the link; a miss means the manifest was built by hand.
  if (!bottle) throw new UsageError(`agent "${name}" names bottle "${agent.bottle}", which is not in ${loaded.path}`);
  return { agent, bottle };
}
