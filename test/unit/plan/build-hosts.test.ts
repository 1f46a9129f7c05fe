import { describe, expect, it } from 'vitest';
import { buildHosts, PACKAGE_HOSTS, planBuildHosts } from '../../../src/plan/build-hosts.js';
import { formatPlanText } from '../../../src/plan/format-text.js';
import { fakePlan } from '../../support/fake-plan.js';

describe('the build allowlist', () => {
  it('is the package hosts alone for a built-in image, shared by every bottle', () => {
    expect(buildHosts(['github.com'], true)).toEqual([...PACKAGE_HOSTS].sort());
  });

  it("adds the bottle's hosts for its own Dockerfile", () => {
    expect(buildHosts(['github.com', 'deb.debian.org'], false)).toEqual([
      'deb.debian.org',
      'github.com',
      'security.debian.org',
    ]);
  });

  it('is derived the same for a plan from before it was planned', () => {
    const plan = fakePlan('tbuild-aaaaa');
    const { build_hosts: _, ...older } = plan;
    expect(planBuildHosts(older)).toEqual(buildHosts(plan.hosts, plan.image.builtin));
  });

  it('is shown by the plan text, package hosts marked', () => {
    const text = formatPlanText({ ...fakePlan('tbuild-aaaaa'), build_hosts: ['deb.debian.org', 'github.com'] });
    expect(text).toContain('build hosts:  2 allowed to image builds (through a build gateway)');
    expect(text).toContain('  - deb.debian.org  (packages)');
    expect(text).toContain('  - github.com\n');
  });
});
