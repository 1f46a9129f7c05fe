// Fails when a source line is longer than the limit Prettier formats to:
// Prettier leaves long strings and comments alone, so they are checked here.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const LIMIT = 120;
const roots = process.argv.slice(2);
const long = [];
const walk = (dir) => {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) walk(path);
    else if (/\.(ts|tsx|mjs)$/.test(entry.name)) {
      readFileSync(path, 'utf8')
        .split('\n')
        .forEach((line, i) => {
          if (line.length > LIMIT) long.push(`${path}:${i + 1}: ${line.length} characters`);
        });
    }
  }
};
for (const root of roots) walk(root);
for (const line of long) console.error(line);
if (long.length > 0) {
  console.error(`${long.length} line(s) over ${LIMIT} characters`);
  process.exit(1);
}
