import { UsageError } from '../shared/errors.js';
import { parsePortSpec, PortSpecError, type PortSpec } from '../shared/port-spec.js';

/** commander's collector for a repeatable option. */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** `--publish` values, each checked: a bad one is a usage error naming it. */
export function publishedPorts(values: readonly string[] = []): PortSpec[] {
  return values.map((value) => {
    try {
      return parsePortSpec(value);
    } catch (err) {
      if (err instanceof PortSpecError) throw new UsageError(`--publish ${err.message}`);
      throw err;
    }
  });
}
