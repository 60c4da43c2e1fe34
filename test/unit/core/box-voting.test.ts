import { describe, expect, it } from 'vitest';
import { BoxCoder } from '../../../src/core/box-coder.js';
import { voteBoxes } from '../../../src/core/box-voting.js';
import { postprocessDetections } from '../../../src/core/postprocess.js';

describe('box voting', () => {
  // Three candidates of class 1 and one of class 2: [0] and [1] overlap by IoU 80 / 100 = 0.8, [2] touches [0] by 0.
  const boxes = Float32Array.of(0, 0, 10, 10, 2, 0, 10, 10, 10, 0, 20, 10, 0, 0, 10, 10);
  const scores = [0.9, 0.3, 0.8, 0.7];
  const classes = [1, 1, 1, 2];

  it('golden: a kept box moves to the score-weighted mean of its class neighbours at or above the IoU; scores stay', () => {
    const voted = voteBoxes(boxes, scores, classes, Int32Array.of(0, 2, 3), 0.5);
    // [0]: (0.9 * [0, 0, 10, 10] + 0.3 * [2, 0, 10, 10]) / 1.2 -> x1 = 0.6 / 1.2 = 0.5.
    expect(Array.from(voted.subarray(0, 4))).toEqual([0.5, 0, 10, 10]);
    // [2] has no neighbour; [3] is the only candidate of class 2, although [0] covers it exactly.
    expect(Array.from(voted.subarray(4, 8))).toEqual([10, 0, 20, 10]);
    expect(Array.from(voted.subarray(8, 12))).toEqual([0, 0, 10, 10]);
  });

  it('a neighbour below the IoU does not vote, one exactly at it does', () => {
    expect(Array.from(voteBoxes(boxes, scores, classes, [0], 0.81))).toEqual([0, 0, 10, 10]);
    expect(voteBoxes(boxes, scores, classes, [0], 0.8)[0]).toBeCloseTo(0.5, 6);
  });

  it('in post-processing: boxVoting moves the boxes NMS kept and nothing else; absent, it is off', () => {
    // Two regions that both see class 1 of 2, and decode to themselves (zero deltas).
    const probs = Float32Array.of(0.1, 0.9, 0.7, 0.3);
    const deltas = new Float32Array(2 * 4 * 2);
    const proposals = Float32Array.of(0, 0, 10, 10, 2, 0, 10, 10);
    const size = { height: 20, width: 20 };
    const settings = { coder: new BoxCoder({ weights: [10, 10, 5, 5] }), scoreThreshold: 0.05, nmsThreshold: 0.5, detectionsPerImage: 100, minSize: 0.01 };
    const plain = postprocessDetections(probs, deltas, proposals, size, settings);
    const voted = postprocessDetections(probs, deltas, proposals, size, { ...settings, boxVoting: 0.5 });
    expect(Array.from(plain.boxes)).toEqual([0, 0, 10, 10]);
    expect(Array.from(voted.boxes)).toEqual([0.5, 0, 10, 10]);
    expect(voted.scores).toEqual(plain.scores);
    expect(voted.classIds).toEqual(plain.classIds);
  });
});
