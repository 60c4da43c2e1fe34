import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import type { Layer } from '../../src/inspect/layer-summary.js';
import { readManifest } from '../../src/model/package.js';
import { classifierLayers, packageLayers } from '../../src/inspect/package-layers.js';
import { parseOnnx } from '../../src/onnx/graph.js';
import { pipelineCosts } from '../../src/inspect/pipeline-cost.js';
import { fixturePath } from '../helpers/fixtures.js';
import { readFileSync } from 'node:fs';

/**
 * The layer tables of the seed's networks, from the structure of the graphs
 * models/recipes/backbones/export_backbone.py writes (test/fixtures/backbones, made by
 * make_backbone_fixtures.sh): published totals to the parameter and within
 * 0.5% for multiply-adds, and the seed's AlexNet and ZFNet tables row by row.
 */

const dir = (arch: string) => fixturePath('backbones', arch);
const classifier = async (arch: string) => classifierLayers(dir(arch), await readManifest(dir(arch)));

describe('whole networks at 224 x 224: the published totals', () => {
  // torchvision's model cards: parameters, and GFLOPS as multiply-adds (conv + fc).
  const PUBLISHED = {
    alexnet: { params: 61_100_840, gmacs: 0.714 },
    vgg16: { params: 138_357_544, gmacs: 15.47 },
    googlenet: { params: 6_624_904, gmacs: 1.5 },
    resnet50: { params: 25_557_032, gmacs: 4.09 },
  };
  it.each(Object.entries(PUBLISHED))('%s: %o', async (arch, published) => {
    const t = await classifier(arch);
    expect(t.totals.params).toBe(published.params);
    expect(Math.abs(t.totals.macs / 1e9 / published.gmacs - 1)).toBeLessThan(0.005);
    expect(t.layers.at(-1)!.outputShape).toEqual([1000]);
  });
});

/** The seed's rows (conv, pool, LRN, fc), as [type, output shape, parameters, multiply-adds]. */
type Row = [string, number[], number, number];

function rowsOf(layers: Layer[]): Row[] {
  return layers.filter((l) => ['Conv', 'MaxPool', 'LRN', 'Gemm'].includes(l.type)).map((l) => [l.type, l.outputShape, l.params, l.macs]);
}

const conv = (cout: number, cin: number, k: number, h: number, bias = true): Row => ['Conv', [cout, h, h], k * k * cin * cout + (bias ? cout : 0), h * h * cout * k * k * cin];
const pool = (c: number, h: number): Row => ['MaxPool', [c, h, h], 0, 0];
const lrn = (c: number, h: number): Row => ['LRN', [c, h, h], 0, 0];
const fc = (i: number, o: number): Row => ['Gemm', [o], i * o + o, i * o];

describe("the seed's tables, row by row", () => {
  it('AlexNet (the paper\'s layout): as the seed, at 224', async () => {
    // The seed's figures, with its slips: conv1 gives 55x55 from 224 only with padding 2 (its
    // note: the paper crops 227 and pads nothing); "96*27**27" is 96x27x27; the "4" in LRN's
    // parameter column counts its hyperparameters k, n, alpha, beta: LRN learns no weights.
    expect(rowsOf((await classifier('alexnet-paper')).layers)).toEqual([
      conv(96, 3, 11, 55), pool(96, 27), lrn(96, 27),
      conv(256, 96, 5, 27), pool(256, 13), lrn(256, 13),
      conv(384, 256, 3, 13), conv(384, 384, 3, 13), conv(256, 384, 3, 13), pool(256, 6),
      fc(9216, 4096), fc(4096, 4096), fc(4096, 1000),
    ]);
  });

  it('ZFNet: as the seed, at 224', async () => {
    // The seed's parameter column leaves out the biases (7*7*3*96 for conv1): added here. Its conv2
    // says "s2 p1" but 26x26 out of 55x55 needs no padding (p1 gives 27); pooling rounds up, as
    // Caffe's and the paper's figure (110 -> 55, 26 -> 13).
    expect(rowsOf((await classifier('zfnet')).layers)).toEqual([
      conv(96, 3, 7, 110), pool(96, 55), lrn(96, 55),
      conv(256, 96, 5, 26), pool(256, 13), lrn(256, 13),
      conv(512, 256, 3, 13), conv(1024, 512, 3, 13), conv(512, 1024, 3, 13), pool(512, 6),
      fc(18432, 4096), fc(4096, 4096), fc(4096, 1000),
    ]);
  });

  it("LRN nodes carry the paper's k=2, n=5, alpha=1e-4 (x n: ONNX divides by n), beta=0.75", () => {
    for (const arch of ['alexnet-paper', 'zfnet']) {
      const graph = parseOnnx(new Uint8Array(readFileSync(fixturePath('backbones', arch, 'classifier.onnx'))));
      const lrns = graph.nodes.filter((n) => n.opType === 'LRN');
      expect(lrns.length).toBe(2);
      for (const n of lrns) {
        expect(n.attributes.get('size')).toBe(5);
        expect(n.attributes.get('alpha') as number).toBeCloseTo(5e-4, 9);
        expect(n.attributes.get('beta') as number).toBeCloseTo(0.75, 9);
        expect(n.attributes.get('bias') as number).toBeCloseTo(2, 9);
      }
    }
  });
});

/** The seed's formula: b_i = a_i / (k + alpha * sum_{j = max(0, i - n/2)}^{min(N - 1, i + n/2)} a_j^2)^beta, per pixel. */
function seedLrn(a: Float32Array, [channels, height, width]: [number, number, number], k = 2, n = 5, alpha = 1e-4, beta = 0.75): Float32Array {
  const b = new Float32Array(a.length);
  const plane = height * width;
  const half = Math.floor(n / 2);
  for (let i = 0; i < channels; i++) {
    for (let p = 0; p < plane; p++) {
      let sum = 0;
      for (let j = Math.max(0, i - half); j <= Math.min(channels - 1, i + half); j++) sum += a[j * plane + p]! ** 2;
      b[i * plane + p] = a[i * plane + p]! / (k + alpha * sum) ** beta;
    }
  }
  return b;
}

describe('LRN in ONNX Runtime', () => {
  it("matches the seed's formula, edges of the channel window included", async () => {
    const session = await ort.InferenceSession.create(fixturePath('onnx', 'lrn_alexnet.onnx'));
    const dims: [number, number, number] = [9, 5, 6];
    // ReLU outputs up to ~300, so that alpha * sum is of the order of k and the normalisation shows.
    const a = Float32Array.from({ length: 9 * 5 * 6 }, (_, i) => ((i * 7919) % 301) * (i % 3 === 0 ? 1 : 0.2));
    const y = (await session.run({ x: new ort.Tensor('float32', a, [1, ...dims]) })).y!.data as Float32Array;
    const ref = seedLrn(a, dims);
    let worst = 0;
    for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(y[i]! - ref[i]!) / Math.max(1e-6, Math.abs(ref[i]!)));
    expect(worst).toBeLessThan(1e-5);
    // The normalisation is not negligible: the output is well below the input somewhere.
    expect(Math.min(...Array.from(ref, (v, i) => (a[i]! > 100 ? v / a[i]! : 1)))).toBeLessThan(0.5);
    await session.release();
  });
});

describe('detection packages around the seed networks', () => {
  // conv5's map at 224 x 288: stride 16 (AlexNet's and ZFNet's unpadded layers leave 13 x 17, as their 13 x 13 at 224).
  const MAPS = { alexnet: [13, 17], 'alexnet-paper': [13, 17], zfnet: [13, 17], vgg16: [14, 18], googlenet: [14, 18], resnet50: [14, 18] };
  it.each(Object.keys(MAPS))('%s: stride 16, the RoI sizes of the papers, heads that line up', async (arch) => {
    const m = await readManifest(dir(arch));
    const t = await packageLayers(dir(arch), m, [3, 224, 288]);
    const feature = t.graphs['backbone.onnx']!.outputs.feature_0!;
    expect(feature.slice(1, 3)).toEqual(MAPS[arch as keyof typeof MAPS]);
    const roi = { alexnet: 6, 'alexnet-paper': 6, zfnet: 6, vgg16: 7, googlenet: 14, resnet50: 14 }[arch]!;
    expect(m.pipelines['faster-rcnn']!.roiOp).toMatchObject({ type: 'roi-pool', outputSize: [roi, roi] });
    expect(m.pipelines['fast-rcnn']!.roiPool.outputSize).toEqual([roi, roi]);
    for (const file of ['box_head.onnx', 'rcnn_head.onnx']) {
      expect(t.graphs[file]!.outputs.class_logits).toEqual([1, 21]);
      expect(t.graphs[file]!.outputs.box_deltas).toEqual([1, 84]);
    }
    expect(t.graphs['rpn_head.onnx']!.outputs.objectness_0![1]).toBe(9); // 3 scales x 3 ratios
  });

  it('each generation costs less per image than the last (VGG16, 375x500, 2000 regions)', async () => {
    const costs = await pipelineCosts(dir('vgg16'), await readManifest(dir('vgg16')), { image: [375, 500], proposals: 2000 });
    const [rcnn, fast, faster300] = costs;
    expect(rcnn!.pipeline).toBe('rcnn');
    expect(rcnn!.macs / 1e12).toBeCloseTo(2000 * (15.35 + 0.12) / 1000, 0); // 2000 crops through VGG16
    expect(fast!.macs).toBeLessThan(rcnn!.macs / 50);
    expect(faster300!.macs).toBeLessThan(fast!.macs);
  });
});
