import { describe, expect, it } from 'vitest';
import { cellAnchorsFor, gridAnchors, pyFasterRcnnCellAnchors, torchvisionCellAnchors } from '../../../src/core/anchors.js';
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
