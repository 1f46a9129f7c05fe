import { describe, expect, it } from 'vitest';
import { workdirRefusal, type ProtectedPath } from '../../../src/plan/workdir-guard.js';

const home = '/home/op';
const protectedPaths: ProtectedPath[] = [
  { path: '/home/op/.claude-bottle', what: 'the claude-bottle state folder (CLAUDE_BOTTLE_HOME)' },
  { path: '/home/op/claude-bottle.json', what: 'the manifest' },
  { path: '/home/op/bottles', what: "bottle dev's Dockerfile folder" },
  { path: '/srv/keys/id_ed25519', what: 'an ssh key of bottle dev' },
  { path: '/srv/tokens/gh', what: 'a token_file of bottle dev' },
  { path: '/home/op/prompts/implementer.md', what: "agent implementer's prompt" },
  { path: '/home/op/skills/tdd', what: 'a skill of agent implementer' },
  { path: '/opt/claude-bottle', what: 'the claude-bottle installation this command runs from' },
  { path: '/home/op/bin', what: 'a folder on your PATH' },
  { path: '/usr', what: 'the system folder' },
  { path: '/var', what: 'the system folder', except: ['/var/tmp'] },
  { path: '/home/op/dotfiles/bashrc', what: 'your shell start-up file' },
  { path: '/home/op/.ssh', what: 'your ssh folder' },
];
const refusal = (workdir: string) => workdirRefusal({ workdir, home, protectedPaths });

describe('the working folder the agent may write to', () => {
  it.each([
    ['/', /it is the root folder/],
    ['/home/op', /it is your home folder/],
    ['/home', /it holds your home folder \/home\/op/],
    ['/home/op/bottles', /it is bottle dev's Dockerfile folder/],
    ['/srv', /it holds an ssh key of bottle dev \/srv\/keys\/id_ed25519/],
    ['/srv/tokens', /it holds a token_file of bottle dev \/srv\/tokens\/gh/],
    ['/home/op/prompts', /it holds agent implementer's prompt/],
    ['/home/op/skills/tdd', /it is a skill of agent implementer/],
    ['/home/op/.claude-bottle', /it is the claude-bottle state folder/],
    ['/opt/claude-bottle', /it is the claude-bottle installation this command runs from/],
    ['/opt', /it holds the claude-bottle installation this command runs from \/opt\/claude-bottle/],
    ['/home/op/bin', /it is a folder on your PATH/],
    ['/usr', /it is the system folder/],
    ['/home/op/dotfiles', /it holds your shell start-up file \/home\/op\/dotfiles\/bashrc/],
    ['/home/op/.ssh', /it is your ssh folder/],
  ])('refuses %s', (workdir, why) => {
    const message = refusal(workdir);
    expect(message).toMatch(why);
    expect(message).toMatch(/run it from a project folder \(cd into one, or pass --cwd DIR\)$/);
    expect(message).not.toContain('\n');
  });

  it.each([
    '/home/op/src/app',
    '/home/op/bottles-old',
    '/home/op/skills/tdd-notes',
    '/srv/keys-backup',
    '/tmp/x',
    '/home/op/..project',
    '/var/tmp/build',
    '/var/tmp',
    '/usr-local-copy',
    '/home/op/binaries',
  ])('accepts the project folder %s', (workdir) => {
    expect(refusal(workdir)).toBeUndefined();
  });

  it.each([
    ['/home/op/bottles/sub', /it is inside bottle dev's Dockerfile folder \/home\/op\/bottles/],
    ['/home/op/.claude-bottle/state/dev-a1b2c', /it is inside the claude-bottle state folder/],
    ['/home/op/skills/tdd/examples', /it is inside a skill of agent implementer/],
    ['/opt/claude-bottle/dist/cli-bundle', /it is inside the claude-bottle installation this command runs from/],
    ['/home/op/bin/tools', /it is inside a folder on your PATH \/home\/op\/bin/],
    ['/usr/local/bin', /it is inside the system folder \/usr/],
    ['/var/lib/docker', /it is inside the system folder \/var/],
    ['/home/op/.ssh/keys', /it is inside your ssh folder \/home\/op\/.ssh/],
  ])('refuses %s, inside a protected folder', (workdir, why) => {
    expect(refusal(workdir)).toMatch(why);
  });
});
