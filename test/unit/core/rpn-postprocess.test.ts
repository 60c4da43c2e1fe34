import { describe, expect, it } from 'vitest';
import { BoxCoder } from '../../../src/core/box-coder.js';
import { filterProposals, ProposalGenerator } from '../../../src/core/rpn.js';
import { resizeBoxes } from '../../../src/core/boxes.js';
import { postprocessDetections, softmax } from '../../../src/core/postprocess.js';
import { loadFixture, maxAbsDiff } from '../../helpers/fixtures.js';

const fx = loadFixture('core', 'rpn_postprocess.json');

describe("RPN proposals against torchvision's RegionProposalNetwork", () => {
  it('same proposals in the same order (per-level top-n, clip, min size, score threshold, per-level NMS, post top-n)', () => {
    const r = fx.rpn;
    const gen = new ProposalGenerator({
      anchors: { generator: 'torchvision', sizes: r.sizes, aspectRatios: r.aspectRatios },
      coder: new BoxCoder({ weights: [1, 1, 1, 1] }),
      preNmsTopN: r.preNmsTopN,
      postNmsTopN: r.postNmsTopN,
      nmsThreshold: r.nmsThreshold,
      minSize: r.minSize,
      scoreThreshold: r.scoreThreshold,
    });
    const levels = (r.grids as [number, number][]).map(([h, w], l) => ({
      objectness: Float32Array.from(r.objectness[l]),
      deltas: Float32Array.from(r.deltas[l]),
      height: h,
      width: w,
    }));
    const out = gen.propose(levels, { height: r.imageSize[0], width: r.imageSize[1] }, { height: r.padded[0], width: r.padded[1] });
    expect(out.boxes.length).toBe(r.proposals.length);
    expect(maxAbsDiff(out.boxes, r.proposals)).toBeLessThanOrEqual(1e-4);
    // Sorted by decreasing objectness.
    for (let i = 1; i < out.scores.length; i++) expect(out.scores[i]!).toBeLessThanOrEqual(out.scores[i - 1]!);
  });

  it('filterProposals alone is filter_proposals: clip, min size, score threshold, NMS within each level (44 of 100 kept)', () => {
    const f = fx.filter;
    const levelOf = Int32Array.from((f.perLevel as number[]).flatMap((n, l) => Array<number>(n).fill(l)));
    const boxes = Float32Array.from(f.boxes);
    const out = filterProposals(boxes, Float32Array.from(f.logits), levelOf, { height: f.imageSize[0], width: f.imageSize[1] }, f);
    expect(out.boxes.length).toBe(f.proposals.length);
    expect(maxAbsDiff(out.boxes, f.proposals)).toBe(0);
    // torch's float32 sigmoid against ours rounded from float64: measured one float32 step below 1 (6.0e-8).
    expect(maxAbsDiff(out.scores, f.scores)).toBeLessThanOrEqual(2 ** -24);
    expect(boxes).toEqual(Float32Array.from(f.boxes));
  });
});

describe("post-processing against torchvision's postprocess_detections + resize_boxes", () => {
  it('same detections, classes and scores', () => {
    const p = fx.postprocess;
    const image = { height: p.imageSize[0], width: p.imageSize[1] };
    const rows = p.proposals.length / 4;
    const inInput = postprocessDetections(
      softmax(Float32Array.from(p.classLogits), rows, p.classLogits.length / rows),
      Float32Array.from(p.boxDeltas),
      Float32Array.from(p.proposals),
      image,
      { coder: new BoxCoder({ weights: [10, 10, 5, 5] }), scoreThreshold: p.scoreThreshold, nmsThreshold: p.nmsThreshold, detectionsPerImage: p.detectionsPerImage, minSize: 0.01 },
    );
    // The pipelines' one resize to original pixels, as torchvision's transform.postprocess.
    const out = { ...inInput, boxes: resizeBoxes(inInput.boxes, image, { height: p.originalSize[0], width: p.originalSize[1] }) };
    expect(Array.from(out.classIds)).toEqual(p.labels);
    expect(maxAbsDiff(out.scores, p.scores)).toBeLessThanOrEqual(1e-6);
    expect(maxAbsDiff(out.boxes, p.boxes)).toBeLessThanOrEqual(1e-4);
  });

  it('no proposals -> no detections', () => {
    const out = postprocessDetections(new Float32Array(0), new Float32Array(0), new Float32Array(0), { height: 10, width: 10 }, {
      coder: new BoxCoder({ weights: [10, 10, 5, 5] }),
      scoreThreshold: 0.05,
      nmsThreshold: 0.5,
      detectionsPerImage: 100,
      minSize: 0.01,
    });
    expect(out.scores.length).toBe(0);
  });
});
