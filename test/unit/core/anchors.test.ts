import { describe, expect, it } from 'vitest';
import { anchorShape, cellAnchorsFor, gridAnchors, pyFasterRcnnCellAnchors, torchvisionCellAnchors } from '../../../src/core/anchors.js';
import { loadFixture } from '../../helpers/fixtures.js';

const fx = loadFixture('core', 'anchors.json');

describe('torchvision AnchorGenerator', () => {
  it('golden: size 32, ratio 0.5 -> w = 32 / sqrt(0.5) = 45.25, h = 22.63 -> round(-+22.63, -+11.31)', () => {
    expect(Array.from(torchvisionCellAnchors([32], [0.5]))).toEqual([-23, -11, 23, 11]);
  });

  for (const [n, c] of (fx.torchvision as any[]).entries()) {
    it(`case ${n}: cell anchors and tiled anchors equal the reference exactly`, () => {
      const cells = cellAnchorsFor({ generator: 'torchvision', sizes: c.sizes, aspectRatios: c.aspectRatios });
      cells.forEach((cell, l) => expect(Array.from(cell)).toEqual(c.cellAnchors[l]));
      const tiled: number[] = [];
      cells.forEach((cell, l) => {
        const [gh, gw] = c.grids[l];
        // torchvision: stride = padded size // grid size, per axis.
        const sy = Math.floor(c.paddedSize[0] / gh), sx = Math.floor(c.paddedSize[1] / gw);
        tiled.push(...gridAnchors(cell, gh, gw, sy, sx));
      });
      expect(tiled).toEqual(c.anchors);
    });
  }

  it('rejects sizes and ratios with different level counts, naming both', () => {
    expect(() => cellAnchorsFor({ generator: 'torchvision', sizes: [[32], [64]], aspectRatios: [[1]] })).toThrow(/2 levels.*1 levels/);
  });
});

describe('py-faster-rcnn generate_anchors', () => {
  it('golden: the 9 default anchors of the original code', () => {
    // ratio 0.5: w = round(sqrt(256 / 0.5)) = 23, h = round(11.5) = 12 (half to even); x8 = 184 x 96 around 7.5.
    expect(Array.from(pyFasterRcnnCellAnchors()).slice(0, 4)).toEqual([-84, -40, 99, 55]);
  });
  for (const c of fx.pyFasterRcnn as any[]) {
    it(`base ${c.baseSize}, ratios ${c.ratios}, scales ${c.scales}: equal the reference exactly`, () => {
      expect(Array.from(pyFasterRcnnCellAnchors(c.baseSize, c.ratios, c.scales))).toEqual(c.anchors);
    });
  }
});

describe('anchorShape', () => {
  it("names an anchor's size and ratio in cellAnchorsFor's order: ratio-major, then sizes", () => {
    const spec = { generator: 'torchvision' as const, sizes: [[32, 64], [128]], aspectRatios: [[0.5, 1, 2], [1, 2]] };
    expect([0, 1, 2, 5].map((a) => anchorShape(spec, 0, a))).toEqual([
      { size: 32, aspectRatio: 0.5 },
      { size: 64, aspectRatio: 0.5 },
      { size: 32, aspectRatio: 1 },
      { size: 64, aspectRatio: 2 },
    ]);
    expect(anchorShape(spec, 1, 1)).toEqual({ size: 128, aspectRatio: 2 });
    // py-faster-rcnn: sizes are the base size times the scales; the cell anchors' widths agree.
    const py = { generator: 'py-faster-rcnn' as const, baseSize: 16, ratios: [0.5, 1, 2], scales: [8, 16, 32] };
    expect(anchorShape(py, 0, 4)).toEqual({ size: 256, aspectRatio: 1 });
    const cells = cellAnchorsFor(py)[0]!;
    expect(cells[4 * 4 + 2]! - cells[4 * 4]! + 1).toBe(256);
  });
});
