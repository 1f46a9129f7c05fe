import { describe, expect, it } from 'vitest';
import { readCapabilityAsk } from '../../../src/gateway/capability-request.js';
import { EgressEntries } from '../../../src/gateway/egress-entries.js';
import { grantHint } from '../../../src/gateway/grant-hint.js';
import { GrantedRules } from '../../../src/gateway/granted-rules.js';

const NO_PUSH = { host: 'git.test', methods: undefined, paths: ['/**', '!/**/git-receive-pack'] };
const PUSH = '/acme/app.git/git-receive-pack';

describe('a method/path grant on an allowlist entry', () => {
  it('lets through exactly the path it names, keeping the entry’s refusals elsewhere', () => {
    const rules = new GrantedRules(NO_PUSH);
    expect(rules.check('POST', PUSH)).toMatchObject({ ok: false, reason: 'path_rule' });
    expect(rules.grant({ paths: [PUSH] })).toBe(true);
    expect(rules.check('POST', PUSH)).toEqual({ ok: true, target: PUSH });
    expect(rules.check('POST', '/other/app.git/git-receive-pack')).toMatchObject({ ok: false, reason: 'path_rule' });
  });

  it('keeps the entry’s paths when it names only methods, and its methods when it names only paths', () => {
    const rules = new GrantedRules({ host: 'registry.test', methods: ['GET', 'HEAD'], paths: ['/acme/**'] });
    rules.grant({ methods: ['PUT'] });
    expect(rules.check('PUT', '/acme/pkg')).toMatchObject({ ok: true });
    expect(rules.check('PUT', '/other/pkg').ok).toBe(false);
    rules.grant({ paths: ['/other/**'] });
    expect(rules.check('GET', '/other/pkg')).toMatchObject({ ok: true });
    expect(rules.check('DELETE', '/other/pkg')).toMatchObject({ ok: false, reason: 'method_rule' });
  });

  it('never makes an ambiguous path readable', () => {
    const rules = new GrantedRules(NO_PUSH);
    rules.grant({ paths: ['/**'] });
    expect(rules.check('POST', '/acme/app.git/..;/git-receive-pack')).toMatchObject({ ok: false });
    expect(rules.check('POST', '/acme//app.git/git-receive-pack')).toMatchObject({
      ok: false,
      reason: 'path_ambiguous',
    });
  });

  it('applies live to the treatment the gateway already holds, and only to an inspected entry with rules', () => {
    const entries = new EgressEntries([
      { host: 'git.test:8443', inspect: true, paths: NO_PUSH.paths },
      { host: 'open.test', inspect: true },
      { host: 'pinned.test', inspect: false },
    ]);
    const treatment = entries.lookup('git.test', 8443, 'connect')!;
    expect(treatment.rules!.check('POST', PUSH).ok).toBe(false);
    entries.grant('git.test', 8443, { methods: ['POST'], paths: [PUSH] });
    expect(treatment.rules!.check('POST', PUSH).ok).toBe(true);
    expect(treatment.rules!.check('GET', PUSH).ok).toBe(false);
    expect(entries.grantable('nowhere.test', 443)).toMatchObject({
      problem: expect.stringContaining('not on the allowlist'),
    });
    expect(entries.grantable('open.test', 443)).toMatchObject({
      problem: expect.stringContaining('no method or path'),
    });
    expect(entries.grantable('pinned.test', 443)).toMatchObject({ problem: expect.stringContaining('not inspected') });
  });

  it('starts with the grants a resumed plan kept', () => {
    const entries = new EgressEntries([
      { host: 'git.test', inspect: true, paths: NO_PUSH.paths, grants: [{ paths: [PUSH] }] },
    ]);
    expect(entries.lookup('git.test', 443, 'connect')!.rules!.check('POST', PUSH).ok).toBe(true);
  });
});

describe('the refusal’s bottle-request command', () => {
  it('names the refused method, or the canonical path, and the port when it is not 443', () => {
    const rules = new GrantedRules({ host: 'pypi.test', methods: ['GET'] });
    const method = rules.check('POST', '/simple/');
    if (method.ok) throw new Error('expected a refusal');
    expect(grantHint(method, { host: 'pypi.test', port: 443, method: 'POST', target: '/simple/' })).toBe(
      "bottle-request egress pypi.test --method POST --reason 'why the task needs it'",
    );
    const paths = new GrantedRules(NO_PUSH);
    const target = '/acme/./app.git/%67it-receive-pack?x=1';
    const path = paths.check('POST', target);
    if (path.ok) throw new Error('expected a refusal');
    expect(grantHint(path, { host: 'git.test', port: 8443, method: 'POST', target })).toBe(
      `bottle-request egress git.test:8443 --path '${PUSH}' --reason 'why the task needs it'`,
    );
  });
});

describe('an egress ask with a scope', () => {
  const ask = (body: unknown) => readCapabilityAsk(Buffer.from(JSON.stringify(body)));

  it('is read with its methods upper-cased and its globs checked like a manifest’s', () => {
    expect(ask({ kind: 'egress', host: 'Git.Test', methods: ['post'], paths: [PUSH], reason: 'push' })).toEqual({
      ask: { kind: 'egress', host: 'git.test', methods: ['POST'], paths: [PUSH], reason: 'push' },
    });
    expect(ask({ kind: 'egress', host: 'git.test', paths: ['no-slash'], reason: 'x' })).toMatchObject({
      issues: [expect.stringContaining('must start with "/"')],
    });
    expect(ask({ kind: 'egress', host: 'git.test', methods: ['GE T'], reason: 'x' })).toMatchObject({
      issues: [expect.stringContaining('not an HTTP method')],
    });
    expect(ask({ kind: 'dockerfile', dockerfile: 'FROM x', paths: ['/a'], reason: 'x' })).toMatchObject({
      issues: [expect.stringContaining('belong to an egress request')],
    });
  });
});
