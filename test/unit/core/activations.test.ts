import { describe, expect, it } from 'vitest';
import { strongestChannels } from '../../../src/core/activations.js';

describe('strongestChannels', () => {
  it('ranks channels by their maximum over the cropped maps, and crops each map', () => {
    // 3 channels of 2 x 3; the crop (2 x 2) leaves out the last column, where channel 0 has its 100.
    const chw = Float32Array.from([1, 2, 100, 3, 4, 0, /* */ 9, 1, 0, 1, 1, 0, /* */ 5, 5, 0, 5, 5, 0]);
    const views = strongestChannels(chw, 3, 2, 3, 2, 2, 2);
    expect(views.map((v) => v.index)).toEqual([1, 2]);
    expect(views[0]).toEqual({ index: 1, max: 9, mean: 3, map: [9, 1, 1, 1] });
    expect(views[1]!.map).toEqual([5, 5, 5, 5]);
    expect(strongestChannels(chw, 3, 2, 3, 2, 3, 1)[0]).toMatchObject({ index: 0, max: 100 });
  });
});
