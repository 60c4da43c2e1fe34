import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BBOX_XFORM_CLIP, BoxCoder } from '../../../src/core/box-coder.js';
import { loadFixture, maxAbsDiff } from '../../helpers/fixtures.js';

const fx = loadFixture('core', 'box_coder.json');
const refs = Float32Array.from(fx.references as number[]);

describe('BoxCoder against torchvision', () => {
  for (const c of fx.cases as any[]) {
    it(`weights ${c.weights}, K=${c.k}: decode within 1e-5, relative to the coordinate above 1 px`, () => {
      // Arithmetic is float32 step for step; what remains is torch's exp (SLEEF,
      // not correctly rounded): at most one float32 ulp, 6.1e-5 at 1000 px.
      const out = new BoxCoder({ weights: c.weights }).decode(Float32Array.from(c.deltas), refs);
      expect(out.length).toBe(c.decoded.length);
      let worst = 0;
      for (let i = 0; i < out.length; i++) worst = Math.max(worst, Math.abs(out[i]! - c.decoded[i]) / Math.max(1, Math.abs(c.decoded[i])));
      expect(worst).toBeLessThanOrEqual(1e-5);
    });
    if (c.encoded) {
      it(`weights ${c.weights}: encode within 1e-5`, () => {
        const out = new BoxCoder({ weights: c.weights }).encode(Float32Array.from(c.targets), refs);
        expect(maxAbsDiff(out, c.encoded)).toBeLessThanOrEqual(1e-5);
      });
    }
  }

  it('clamps dw at log(1000/16): a 16 px box grows to at most 1000 px', () => {
    const coder = new BoxCoder({ weights: [1, 1, 1, 1] });
    const out = coder.decode([0, 0, 100, 100], Float32Array.of(0, 0, 16, 16));
    expect(out[2]! - out[0]!).toBeCloseTo(16 * Math.exp(BBOX_XFORM_CLIP), 3);
    expect(out[2]! - out[0]!).toBeCloseTo(1000, 3);
  });

  it('py-faster-rcnn "+1" widths: zero deltas give back the box', () => {
    const coder = new BoxCoder({ weights: [1, 1, 1, 1], pixelOffset: 1 });
    expect(Array.from(coder.decode([0, 0, 0, 0], Float32Array.of(0, 0, 15, 15)))).toEqual([0, 0, 15, 15]);
    // width 16 -> target (0, 0, 31, 15) is twice as wide: dw = log(32 / 16).
    expect(coder.encode(Float32Array.of(0, 0, 31, 15), Float32Array.of(0, 0, 15, 15))[2]).toBeCloseTo(Math.log(2), 6);
  });

  it('rejects bad weights with the value', () => {
    expect(() => new BoxCoder({ weights: [10, 10, 0, 5] })).toThrow(/\[10, 10, 0, 5\]/);
  });

  it('property: decode(encode(b, r), r) == b', () => {
    const box = fc.tuple(fc.float({ min: -500, max: 500, noNaN: true }), fc.float({ min: -500, max: 500, noNaN: true }), fc.float({ min: 1, max: 400, noNaN: true }), fc.float({ min: 1, max: 400, noNaN: true }));
    fc.assert(
      fc.property(box, box, fc.constantFrom<[number, number, number, number]>([1, 1, 1, 1], [10, 10, 5, 5], [2, 3, 0.5, 0.7]), (t, r, weights) => {
        const target = Float64Array.of(t[0], t[1], t[0] + t[2], t[1] + t[3]);
        const ref = Float64Array.of(r[0], r[1], r[0] + r[2], r[1] + r[3]);
        // No clamp: targets up to 400x their reference are legal here.
        const coder = new BoxCoder({ weights, clamp: Infinity });
        const back = coder.decode(coder.encode(target, ref), ref);
        expect(maxAbsDiff(back, target)).toBeLessThanOrEqual(1e-3);
      }),
      { numRuns: 300 },
    );
  });
});
