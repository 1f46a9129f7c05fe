/**
 * A deliberately small YAML writer for pipelock's config: block mappings,
 * block sequences of scalars, and scalars. Every string is written as a
 * double-quoted scalar using JSON escaping, which YAML 1.2 accepts verbatim,
 * so no value (a `*.` wildcard, a `:` in an address, "yes"/"no", "1") can be
 * re-typed or misread by the YAML parser on the other side. Anything outside
 * that shape is refused rather than written approximately.
 */
export type YamlScalar = string | number | boolean | null;
export type YamlValue = YamlScalar | YamlScalar[] | YamlMapping;
export interface YamlMapping {
  [key: string]: YamlValue;
}

const INDENT = '  ';
const PLAIN_KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;

export class YamlEmitError extends Error {
  constructor(path: string, problem: string) {
    super(`cannot write ${path || 'document'} as YAML: ${problem}`);
    this.name = 'YamlEmitError';
  }
}

export function emitYaml(doc: YamlMapping): string {
  return emitMapping(doc, 0, '').join('\n') + '\n';
}

function emitMapping(map: YamlMapping, depth: number, path: string): string[] {
  const lines: string[] = [];
  const pad = INDENT.repeat(depth);
  for (const [key, value] of Object.entries(map)) {
    const at = path ? `${path}.${key}` : key;
    const k = PLAIN_KEY.test(key) ? key : quoted(key);
    if (value === undefined) throw new YamlEmitError(at, 'value is undefined');
    if (Array.isArray(value)) {
      if (value.length === 0) {
        lines.push(`${pad}${k}: []`);
        continue;
      }
      lines.push(`${pad}${k}:`);
      value.forEach((item, i) => lines.push(`${pad}${INDENT}- ${scalar(item, `${at}[${i}]`)}`));
    } else if (isMapping(value)) {
      if (Object.keys(value).length === 0) {
        lines.push(`${pad}${k}: {}`);
        continue;
      }
      lines.push(`${pad}${k}:`);
      lines.push(...emitMapping(value, depth + 1, at));
    } else {
      lines.push(`${pad}${k}: ${scalar(value, at)}`);
    }
  }
  return lines;
}

function isMapping(value: YamlValue): value is YamlMapping {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function scalar(value: unknown, path: string): string {
  if (value === null) return 'null';
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new YamlEmitError(path, 'number is not finite');
    return String(value);
  }
  if (typeof value === 'string') return quoted(value);
  throw new YamlEmitError(path, `only strings, numbers, booleans and null may appear here, not ${Array.isArray(value) ? 'a nested list' : typeof value}`);
}

/**
 * A double-quoted scalar in printable ASCII only: JSON's escapes for quotes,
 * backslashes and control characters (all valid YAML escapes), and YAML's own
 * \u / \U escapes for everything else, so the bytes on disk never depend on
 * how a parser treats DEL, NEL or line-separator characters.
 */
function quoted(text: string): string {
  let out = '';
  for (const ch of JSON.stringify(text)) {
    const code = ch.codePointAt(0)!;
    if (code >= 0x20 && code <= 0x7e) out += ch;
    else if (code <= 0xffff) out += `\\u${code.toString(16).padStart(4, '0')}`;
    else out += `\\U${code.toString(16).padStart(8, '0')}`;
  }
  return out;
}
