/**
 * What each pipeline of a package costs per image, in multiply-adds, from its
 * graphs' layer tables: why each generation is faster than the last.
 *
 *   R-CNN        regions x (backbone on one warped crop + R-CNN head)
 *   Fast R-CNN   backbone on the image once + regions x head
 *   Faster       backbone once + RPN head on its map + proposals (300 to 1000) x head
 *
 * Region ops (selective search, RoI pooling, NMS) and the softmax are not
 * multiply-adds of a graph and are not counted; selective search's own time is
 * what Faster R-CNN removes besides.
 */

import { resizedSize } from '../core/rcnn-transform.js';
import type { ModelManifest } from '../model/manifest-schema.js';
import { packageLayers } from './package-layers.js';

export interface PipelineCost {
  pipeline: 'rcnn' | 'fast-rcnn' | 'faster-rcnn';
  /** Regions the heads run on. */
  regions: number;
  /** Multiply-adds per image. */
  macs: number;
  /** The terms of the sum, in order. */
  terms: { stage: string; macs: number; times: number }[];
}

export interface CostOptions {
  /** The original image, [height, width]. */
  image: [number, number];
  /** Regions of R-CNN and Fast R-CNN (selective search's count). */
  proposals: number;
  /** Faster R-CNN's proposal counts to cost (the paper: 300; torchvision's default test-time count: 1000). */
  rpnProposals?: number[];
}

const sum = (terms: PipelineCost['terms']) => terms.reduce((s, t) => s + t.macs * t.times, 0);

export async function pipelineCosts(dir: string, m: ModelManifest, options: CostOptions): Promise<PipelineCost[]> {
  const { height, width } = resizedSize(options.image[0], options.image[1], m.input.minSize, m.input.maxSize);
  const div = m.input.sizeDivisible;
  const net = await packageLayers(dir, m, [3, Math.ceil(height / div) * div, Math.ceil(width / div) * div]);
  const backbone = net.graphs[m.backbone.file]!.totals.macs;
  const costs: PipelineCost[] = [];
  const p = m.pipelines;
  if (p.rcnn) {
    const crop = await packageLayers(dir, m, [3, ...p.rcnn.warp.size]);
    const terms = [
      { stage: `backbone on a ${p.rcnn.warp.size.join('x')} crop`, macs: crop.graphs[m.backbone.file]!.totals.macs, times: options.proposals },
      { stage: 'R-CNN head', macs: crop.graphs[p.rcnn.head.file]!.totals.macs, times: options.proposals },
    ];
    costs.push({ pipeline: 'rcnn', regions: options.proposals, macs: sum(terms), terms });
  }
  if (p['fast-rcnn']) {
    const terms = [
      { stage: 'backbone', macs: backbone, times: 1 },
      { stage: 'head', macs: net.graphs[p['fast-rcnn'].head.file]!.totals.macs, times: options.proposals },
    ];
    costs.push({ pipeline: 'fast-rcnn', regions: options.proposals, macs: sum(terms), terms });
  }
  const f = p['faster-rcnn'];
  if (f) {
    for (const n of options.rpnProposals ?? [300, 1000]) {
      const terms = [
        { stage: 'backbone', macs: backbone, times: 1 },
        { stage: 'RPN head', macs: net.graphs[f.rpn.head.file]!.totals.macs, times: 1 },
        { stage: 'head', macs: net.graphs[f.boxHead.file]!.totals.macs, times: n },
      ];
      costs.push({ pipeline: 'faster-rcnn', regions: n, macs: sum(terms), terms });
    }
  }
  return costs;
}
