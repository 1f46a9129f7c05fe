import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { UsageError } from '../../../src/shared/errors.js';
import { checkBottleHome, homeProblem } from '../../../src/shared/private-home.js';

let made: string[] = [];
afterEach(() => {
  for (const dir of made) rmSync(dir, { recursive: true, force: true });
  made = [];
});

/** A fresh folder with MODE, owned by whoever runs the test. */
function folder(mode: number): string {
  const parent = mkdtempSync(join(tmpdir(), 'cb-home-check-'));
  made.push(parent);
  const home = join(parent, 'home');
  mkdirSync(home);
  chmodSync(home, mode);
  return home;
}

const me = process.getuid!();

describe('the claude-bottle home check', () => {
  it('accepts a home that does not exist yet (it is made 0700) and one that is private to its owner', () => {
    expect(homeProblem(join(folder(0o700), 'not-yet'), me)).toBeUndefined();
    expect(homeProblem(folder(0o700), me)).toBeUndefined();
    expect(homeProblem(folder(0o755), me)).toBeUndefined();
  });

  it('refuses a group-writable home, naming the folder and chmod go-w', () => {
    const home = folder(0o775);
    expect(homeProblem(home, me)).toBe(
      `the claude-bottle home ${home} is writable by group or others (mode 775); run: chmod go-w ${home}`,
    );
  });

  it('refuses a world-writable home, sticky bit or not', () => {
    for (const mode of [0o757, 0o1777]) {
      const home = folder(mode);
      expect(statSync(home).mode & 0o7777).toBe(mode);
      expect(homeProblem(home, me)).toMatch(/is writable by group or others .*; run: chmod go-w /);
    }
  });

  it("refuses a home owned by another user (not root, not this process's)", () => {
    const home = folder(0o700);
    // As root the folder is given away; otherwise it is ours and the check is asked as another uid.
    const asUid = me === 0 ? 0 : me + 1;
    if (me === 0) chownSync(home, 4242, 4242);
    const owner = me === 0 ? 4242 : me;
    expect(homeProblem(home, asUid)).toBe(
      `the claude-bottle home ${home} is owned by uid ${owner}, not by this user (uid ${asUid}) or root; ` +
        'run bottle as its owner or set CLAUDE_BOTTLE_HOME to a folder of your own',
    );
  });

  it("accepts a home root owns: root's folders are not someone else's", () => {
    expect(homeProblem('/', 4242)).toBeUndefined();
  });

  it('refuses at command start with a usage error (exit 2) of one line', () => {
    const home = folder(0o777);
    let thrown: unknown;
    try {
      checkBottleHome({ CLAUDE_BOTTLE_HOME: home }, me);
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(UsageError);
    expect((thrown as UsageError).exitCode).toBe(2);
    expect((thrown as UsageError).message).not.toContain('\n');
    expect((thrown as UsageError).message).toContain(`chmod go-w ${home}`);
    expect(() => checkBottleHome({ CLAUDE_BOTTLE_HOME: folder(0o700) }, me)).not.toThrow();
  });
});
