import { describe, expect, it } from 'vitest';
import { imagesToDiscard } from '../../../src/effects/discard.js';
import { samplePlan } from '../../golden/fixtures.js';

const custom = {
  tag: 'claude-bottle/own:0123456789abcdef',
  context_hash: '0123456789abcdef0123',
  dockerfile: '/home/user/own/Dockerfile',
  builtin: false,
};

describe('the images a discard removes', () => {
  it('keeps the built-in images, which every bottle shares', () => {
    const plan = samplePlan('dev-a1b2c');
    const verdict = imagesToDiscard(plan, new Set());
    expect(verdict.candidates).toEqual([]);
    expect(verdict.kept.map((k) => k.tag)).toEqual([plan.image.tag, plan.gateway_image.tag]);
  });

  it("removes the bottle's own image when no other kept bottle uses it", () => {
    const verdict = imagesToDiscard(samplePlan('dev-a1b2c', { image: custom }), new Set());
    expect(verdict.candidates).toEqual([custom.tag]);
  });

  it('keeps its own image while another bottle uses the same tag', () => {
    const verdict = imagesToDiscard(samplePlan('dev-a1b2c', { image: custom }), new Set([custom.tag]));
    expect(verdict.candidates).toEqual([]);
    expect(verdict.kept).toContainEqual({ tag: custom.tag, reason: 'another bottle uses it' });
  });
});
