import { mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { operatorPaths } from '../../../src/cli/workdir-guard.js';
import { repoRoot } from '../../../src/images/build-context.js';
import { workdirRefusal } from '../../../src/plan/workdir-guard.js';

const scratch = realpathSync(mkdtempSync(join(tmpdir(), 'cb-guard-')));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));
const home = join(scratch, 'home');
mkdirSync(join(home, '.ssh'), { recursive: true });
mkdirSync(join(scratch, 'dotfiles'));
writeFileSync(join(scratch, 'dotfiles', 'bashrc'), '');
symlinkSync(join(scratch, 'dotfiles', 'bashrc'), join(home, '.bashrc'));
mkdirSync(join(scratch, 'tools', 'bin'), { recursive: true });

const env = { PATH: `${join(scratch, 'tools', 'bin')}::relative/bin:/usr/bin`, ZDOTDIR: join(scratch, 'zsh') };
const listed = operatorPaths(env, home);
const refusal = (workdir: string) => workdirRefusal({ workdir, home, protectedPaths: listed });
const pathsOf = (what: string) => listed.filter((p) => p.what === what).map((p) => p.path);

describe("the operator's machine, protected from the agent's working folder", () => {
  it('protects the installation this command runs from, found from the running module, and what it loads', () => {
    const root = realpathSync(repoRoot());
    expect(pathsOf('the claude-bottle installation this command runs from')).toEqual([root]);
    expect(refusal(root)).toMatch(/it is the claude-bottle installation this command runs from/);
    expect(refusal(join(root, 'dist', 'cli-bundle'))).toMatch(/it is inside the claude-bottle installation/);
    expect(refusal(dirname(root))).toMatch(/it holds the claude-bottle installation/);
    expect(pathsOf('the dependencies of the claude-bottle installation')).toEqual([
      realpathSync(join(root, 'node_modules')),
    ]);
    expect(pathsOf('the folder of the Node.js running bottle')).toEqual([realpathSync(dirname(process.execPath))]);
  });

  it("protects every absolute folder on the operator's PATH and ignores relative entries", () => {
    expect(pathsOf('a folder on your PATH')).toEqual([join(scratch, 'tools', 'bin'), realpathSync('/usr/bin')]);
    expect(refusal(join(scratch, 'tools'))).toMatch(/it holds a folder on your PATH .*\/tools\/bin/);
  });

  it('protects the system folders and everything in them but the scratch space of /var', () => {
    const system = pathsOf('the system folder');
    for (const folder of ['/etc', '/usr', '/bin', '/sbin', '/lib', '/boot', '/proc', '/sys', '/dev', '/run', '/var']) {
      expect(system).toContain(realpathSync(folder));
    }
    expect(refusal('/etc')).toMatch(/it is the system folder/);
    expect(refusal(realpathSync('/usr/local/bin'))).toMatch(/it is inside the system folder \/usr/);
    expect(refusal(realpathSync('/var/run'))).toMatch(/^refusing to give the agent \/run: it is the system folder,/);
    expect(refusal(join(realpathSync('/var/tmp'), 'project'))).toBeUndefined();
    expect(refusal(join(realpathSync(tmpdir()), 'project'))).toBeUndefined();
  });

  it("protects root's home as a system folder unless it is the operator's home, whose own rules then apply", () => {
    expect(pathsOf('the system folder')).toContain('/root');
    expect(operatorPaths(env, '/root').filter((p) => p.path === '/root')).toEqual([]);
  });

  it('protects the shell start-up files where they really are (a symlinked dotfile too) and ZDOTDIR', () => {
    const startUp = pathsOf('your shell start-up file');
    expect(startUp).toContain(join(scratch, 'dotfiles', 'bashrc'));
    expect(startUp).toContain(join(home, '.profile'));
    expect(startUp).toContain(join(scratch, 'zsh', '.zshrc'));
    expect(refusal(join(scratch, 'dotfiles'))).toMatch(/it holds your shell start-up file .*\/dotfiles\/bashrc/);
    expect(refusal(join(scratch, 'zsh'))).toMatch(/it holds your shell start-up file .*\/zsh\/.zshenv/);
  });

  it('protects ~/.ssh and everything in it', () => {
    expect(pathsOf('your ssh folder')).toEqual([join(home, '.ssh')]);
    expect(refusal(join(home, '.ssh'))).toMatch(/it is your ssh folder/);
    expect(refusal(join(home, 'src', 'app'))).toBeUndefined();
  });
});
