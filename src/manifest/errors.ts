import { z } from 'zod';
import { UsageError } from '../shared/errors.js';

/** One thing wrong with a manifest, at a JSON path such as `bottles[0].egress.allow[2]`. */
export interface ManifestProblem {
  path: string;
  message: string;
}

/**
 * Every problem found in one manifest file, reported at once so the user can
 * fix them in one pass. A usage error: exit 2.
 */
export class ManifestError extends UsageError {
  constructor(
    readonly manifestPath: string,
    readonly problems: ManifestProblem[],
  ) {
    super(formatManifestProblems(manifestPath, problems));
  }
}

export function formatManifestProblems(manifestPath: string, problems: ManifestProblem[]): string {
  const header = `manifest ${manifestPath}: ${problems.length} problem${problems.length === 1 ? '' : 's'}`;
  return [header, ...problems.map((p) => `  - ${p.path}: ${p.message}`)].join('\n');
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** `['bottles', 0, 'egress', 'allow', 2]` -> `bottles[0].egress.allow[2]`; odd keys become `["a.b"]`. */
export function formatJsonPath(path: ReadonlyArray<string | number>): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else if (IDENTIFIER.test(part)) out += out === '' ? part : `.${part}`;
    else out += `[${JSON.stringify(part)}]`;
  }
  return out === '' ? '(top level)' : out;
}

/** zod issues -> problems; unknown keys get one problem per key, at that key's path. */
export function problemsFromZod(error: z.ZodError): ManifestProblem[] {
  const problems: ManifestProblem[] = [];
  for (const issue of error.issues) {
    if (issue.code === z.ZodIssueCode.unrecognized_keys) {
      for (const key of issue.keys) {
        problems.push({
          path: formatJsonPath([...issue.path, key]),
          message:
            `unknown key "${key}"; ${issue.message.replace(/^unknown key; /, '')}; ` + 'remove it or fix its spelling',
        });
      }
    } else if (issue.code === z.ZodIssueCode.invalid_type && issue.received === 'undefined') {
      problems.push({ path: formatJsonPath(issue.path), message: requiredMessage(issue) });
    } else {
      problems.push({ path: formatJsonPath(issue.path), message: issue.message });
    }
  }
  return problems;
}

function requiredMessage(issue: z.ZodInvalidTypeIssue): string {
  if (issue.message && issue.message !== 'Required') return issue.message;
  const key = issue.path[issue.path.length - 1];
  return `missing required key "${String(key)}"`;
}
