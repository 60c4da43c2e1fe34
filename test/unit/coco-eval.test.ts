import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { CocoDataset, CocoResult } from '../../src/dataset/coco.js';
import { evaluateCoco } from '../../src/eval/coco-eval.js';

interface Case {
  name: string;
  gt: CocoDataset;
  results: CocoResult[];
  stats: Record<string, number>;
  perClass: Record<string, { ap: number; ap50: number }>;
}

const fixtures = JSON.parse(readFileSync(new URL('../fixtures/coco-eval.json', import.meta.url), 'utf8')) as { cases: Case[] };

describe('evaluateCoco against pycocotools 2.0.11 (test/fixtures/make_coco_eval_fixtures.py)', () => {
  for (const c of fixtures.cases) {
    it(c.name, () => {
      const m = evaluateCoco(c.gt, c.results);
      for (const [k, v] of Object.entries(c.stats)) expect(m[k as keyof typeof m], k).toBeCloseTo(v, 6);
      for (const [name, v] of Object.entries(c.perClass)) {
        expect(m.perClass[name]!.ap, `${name} AP`).toBeCloseTo(v.ap, 6);
        expect(m.perClass[name]!.ap50, `${name} AP50`).toBeCloseTo(v.ap50, 6);
      }
    });
  }
});

/** A one-image ground truth with boxes [x, y, w, h] per class id. */
function truth(boxes: [number, [number, number, number, number]][], classes = ['a', 'b']): CocoDataset {
  return {
    images: [{ id: 1, file_name: '1.jpg', width: 640, height: 480 }],
    annotations: boxes.map(([c, bbox], i) => ({ id: i + 1, image_id: 1, category_id: c, bbox, area: bbox[2] * bbox[3], iscrowd: 0 })),
    categories: classes.map((name, i) => ({ id: i + 1, name })),
  };
}

const det = (c: number, bbox: [number, number, number, number], score: number): CocoResult => ({ image_id: 1, category_id: c, bbox, score });

describe('evaluateCoco, cases computed by hand', () => {
  it('one perfect detection scores AP 1 at every threshold', () => {
    const m = evaluateCoco(truth([[1, [10, 10, 100, 50]]], ['a']), [det(1, [10, 10, 100, 50], 0.9)]);
    expect(m.ap).toBeCloseTo(1, 12); // tp / (tp + fp + eps), as pycocotools
    expect(m.ap50).toBeCloseTo(1, 12); // tp / (tp + fp + eps), as pycocotools
    expect(m.apMedium).toBeCloseTo(1, 12); // tp / (tp + fp + eps), as pycocotools
    expect(m.apSmall).toBe(-1); // no small objects: undefined, as pycocotools' -1
  });

  it('a lower-scored duplicate is a false positive after every true positive: AP stays 1', () => {
    const m = evaluateCoco(truth([[1, [10, 10, 100, 50]]], ['a']), [det(1, [10, 10, 100, 50], 0.9), det(1, [11, 10, 100, 50], 0.8)]);
    expect(m.ap50).toBeCloseTo(1, 12); // tp / (tp + fp + eps), as pycocotools
  });

  it('a duplicate scored above the true positive halves precision at full recall', () => {
    const m = evaluateCoco(truth([[1, [10, 10, 100, 50]], [1, [300, 300, 60, 60]]], ['a']), [det(1, [10, 10, 100, 50], 0.9), det(1, [300, 300, 60, 60], 0.5), det(1, [12, 10, 100, 50], 0.7)]);
    // Ranked: TP (p 1, r .5), FP (p .5), TP (p 2/3, r 1): interpolated precision 1 up to r .5, 2/3 after.
    expect(m.ap50).toBeCloseTo((51 * 1 + 50 * (2 / 3)) / 101, 12);
  });

  it('a missed object caps recall at one half', () => {
    const m = evaluateCoco(truth([[1, [10, 10, 100, 50]], [1, [200, 200, 40, 40]]], ['a']), [det(1, [10, 10, 100, 50], 0.9)]);
    expect(m.ap50).toBeCloseTo(51 / 101, 12);
    expect(m.ar100).toBeCloseTo(0.5, 12);
  });

  it('classes are averaged: a perfect class and one whose false positive outranks its true positive', () => {
    const m = evaluateCoco(truth([[1, [10, 10, 100, 50]], [2, [300, 200, 80, 80]]]), [
      det(1, [10, 10, 100, 50], 0.9),
      det(2, [100, 300, 50, 50], 0.95),
      det(2, [300, 200, 80, 80], 0.6),
    ]);
    expect(m.perClass.a!.ap50).toBeCloseTo(1, 12); // tp / (tp + fp + eps), as pycocotools
    expect(m.perClass.b!.ap50).toBeCloseTo(0.5, 12);
    expect(m.ap50).toBeCloseTo(0.75, 12);
  });

  it('IoU thresholds: a box with IoU exactly 0.6 counts at 0.5, 0.55 and 0.6', () => {
    // Ground truth 100x100, detection shifted 25 px: IoU = 7500 / 12500 = 0.6.
    const m = evaluateCoco(truth([[1, [0, 0, 100, 100]]], ['a']), [det(1, [25, 0, 100, 100], 0.9)]);
    expect(m.ap50).toBeCloseTo(1, 12); // tp / (tp + fp + eps), as pycocotools
    expect(m.ap75).toBe(0);
    expect(m.ap).toBeCloseTo(0.3, 12);
  });

  it('rejects results for images or classes the ground truth lacks', () => {
    expect(() => evaluateCoco(truth([], ['a']), [{ ...det(1, [0, 0, 1, 1], 1), image_id: 7 }])).toThrow(/image_id 7/);
    expect(() => evaluateCoco(truth([], ['a']), [det(3, [0, 0, 1, 1], 1)])).toThrow(/category_id 3/);
  });
});
