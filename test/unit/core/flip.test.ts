import { describe, expect, it } from 'vitest';
import { withMirroredCrops } from '../../../src/core/flip.js';

describe('withMirroredCrops', () => {
  it('golden: two 1-channel 2 x 3 crops, then each mirrored left to right', () => {
    const crops = Float32Array.of(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12);
    expect(Array.from(withMirroredCrops(crops, 3))).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 3, 2, 1, 6, 5, 4, 9, 8, 7, 12, 11, 10]);
  });
  it('no crops -> none', () => {
    expect(withMirroredCrops(new Float32Array(0), 4).length).toBe(0);
  });
});
