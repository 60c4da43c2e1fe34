/**
 * `npm run bench:explain`: the acceptance figures of explanations, on images
 * of the dataset generator with a seed that is in no split of the repo.
 *
 * - Occlusion: for each pipeline, the share of correct detections (IoU >= 0.5
 *   with a ground-truth object of the same class) whose largest score drop
 *   (the centre of the peak patch) lies inside that object's box; and the
 *   same maps with the head's weights shuffled (Adebayo et al. 2018, "Sanity
 *   checks for saliency maps": a map that does not change when the model's
 *   weights are randomised does not explain the model), compared by rank
 *   correlation and by that share.
 * - Provenance: the share of detections whose source region has IoU >= 0.3
 *   with the detection's box.
 * - Cost: one detection explained on a 512 x 512 image by each pipeline, at
 *   the default grid and at stride 16, and what the budget refuses.
 * - Feature views' cost: detection with the backbone's layers exposed
 *   (featureLayers, the server's FEATURE_VIEWS=on) against without, same
 *   image, alternating runs.
 *
 * The peak is the centre of the square whose greying lowered the score most;
 * "overlaps" counts the squares that overlap the object at all. A square
 * of 32 every 32 pixels cannot put its centre inside an object much smaller
 * than itself: `--stride 16 --parts maps` measures the finer grid. The rank
 * correlation is taken over the squares where either map changed the score
 * (R-CNN's untouched crops leave both at exactly 0, which says nothing).
 *
 *   npm run bench:explain -- [--seed 9173] [--count 12] [--threads 2] [--stride 32] [--parts maps,sanity,cost,views]
 */

import { mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { boxIou } from '../../src/core/boxes.js';
import { mulberry32 } from '../../src/core/random.js';
import { generateDataset } from '../../src/dataset/generate.js';
import { Detector, type ExplainResult } from '../../src/detector.js';
import { DetectError } from '../../src/errors.js';
import { DEFAULT_MODEL, SHIPPED_MODELS_DIR } from '../../src/model/package.js';
import { floatData, readModel, writeModel, DataType, bytesOf } from '../../src/onnx/model.js';

const { values } = parseArgs({
  options: {
    seed: { type: 'string', default: '9173' },
    count: { type: 'string', default: '12' },
    threads: { type: 'string', default: String(Math.min(2, availableParallelism())) },
    stride: { type: 'string', default: '32' },
    parts: { type: 'string', default: 'maps,sanity,cost,views' },
  },
});
const seed = Number(values.seed), count = Number(values.count), threads = Number(values.threads), stride = Number(values.stride);
const parts = new Set(values.parts.split(','));
const PIPELINES = ['rcnn', 'fast-rcnn', 'faster-rcnn'] as const;
const HEADS = { rcnn: 'rcnn_head.onnx', 'fast-rcnn': 'fast_rcnn_head.onnx', 'faster-rcnn': 'box_head.onnx' } as const;

type Xyxy = [number, number, number, number];
const iou = (a: readonly number[], b: readonly number[]) => boxIou(Float32Array.from(a), Float32Array.from(b))[0]!;
const inside = (p: Xyxy, box: readonly number[]) => {
  const cx = (p[0] + p[2]) / 2, cy = (p[1] + p[3]) / 2;
  return cx >= box[0]! && cx <= box[2]! && cy >= box[1]! && cy <= box[3]!;
};
const overlaps = (p: Xyxy, box: readonly number[]) => Math.min(p[2], box[2]!) > Math.max(p[0], box[0]!) && Math.min(p[3], box[3]!) > Math.max(p[1], box[1]!);

/** Spearman's rank correlation of two equally long lists. */
function spearman(a: readonly number[], b: readonly number[]): number {
  const ranks = (v: readonly number[]) => {
    const order = v.map((x, i) => [x, i] as const).sort((p, q) => p[0] - q[0]);
    const r = new Array<number>(v.length);
    order.forEach(([, i], k) => (r[i] = k));
    return r;
  };
  const ra = ranks(a), rb = ranks(b);
  const mean = (v: number[]) => v.reduce((s, x) => s + x, 0) / v.length;
  const ma = mean(ra), mb = mean(rb);
  let num = 0, da = 0, db = 0;
  for (let i = 0; i < ra.length; i++) {
    num += (ra[i]! - ma) * (rb[i]! - mb);
    da += (ra[i]! - ma) ** 2;
    db += (rb[i]! - mb) ** 2;
  }
  return da && db ? num / Math.sqrt(da * db) : 0;
}

/** A copy of the default package whose three heads' weight matrices are shuffled (a fixed permutation per tensor); the backbone and RPN as they are. */
function shuffledHeads(): string {
  const dir = mkdtempSync(join(tmpdir(), 'rcnn-serve-shuffled-'));
  const source = join(SHIPPED_MODELS_DIR, DEFAULT_MODEL);
  const heads = new Set<string>(Object.values(HEADS));
  for (const file of readdirSync(source)) {
    if (!heads.has(file)) {
      symlinkSync(join(source, file), join(dir, file));
      continue;
    }
    const m = readModel(readFileSync(join(source, file)));
    const rand = mulberry32(seed);
    m.initializers = m.initializers.map((t) => {
      if (t.dataType !== DataType.FLOAT || t.dims.length < 2) return t;
      const w = floatData(t).slice();
      for (let i = w.length - 1; i > 0; i--) {
        const j = Math.floor(rand() * (i + 1));
        [w[i], w[j]] = [w[j]!, w[i]!];
      }
      return { ...t, data: bytesOf(w) };
    });
    writeFileSync(join(dir, file), writeModel(m));
  }
  return dir;
}

interface Row {
  pipeline: string;
  correct: number;
  peakInside: number;
  peakOverlaps: number;
  shuffledPeakInside: number;
  correlation: number[];
  provenanceOk: number;
  detections: number;
}

async function main() {
  const data = mkdtempSync(join(tmpdir(), 'rcnn-serve-explain-'));
  const shuffledDir = shuffledHeads();
  process.stderr.write(`writing ${count} images of seed ${seed} ...\n`);
  const dataset = await generateDataset({ seed, count, out: data });
  const detector = await Detector.load(DEFAULT_MODEL, { intraOpThreads: threads });
  const shuffled = await Detector.load(shuffledDir, { intraOpThreads: threads });
  const rows: Row[] = [];
  try {
    for (const pipeline of parts.has('maps') ? PIPELINES : []) {
      const row: Row = { pipeline, correct: 0, peakInside: 0, peakOverlaps: 0, shuffledPeakInside: 0, correlation: [], provenanceOk: 0, detections: 0 };
      for (const image of dataset.images) {
        const path = join(data, image.file_name);
        const truth = dataset.annotations.filter((a) => a.image_id === image.id).map((a) => ({ label: dataset.categories.find((c) => c.id === a.category_id)!.name, box: [a.bbox[0], a.bbox[1], a.bbox[0] + a.bbox[2], a.bbox[1] + a.bbox[3]] }));
        const found = await detector.detect(path, { pipeline, scoreThreshold: 0.5, provenance: true });
        row.detections += found.detections.length;
        row.provenanceOk += found.detections.filter((d) => iou(d.provenance!.region, d.box) >= 0.3).length;
        const correct = found.detections.flatMap((d, index) => {
          const match = truth.filter((t) => t.label === d.label).sort((a, b) => iou(b.box, d.box) - iou(a.box, d.box))[0];
          return match && iou(match.box, d.box) >= 0.5 ? [{ d, index, truth: match.box }] : [];
        });
        if (correct.length === 0) continue;
        // Every correct detection of the image in one request: their maps share the backbone passes.
        const top = Math.min(20, Math.max(...correct.map((c) => c.index)) + 1);
        const maps = (await detector.explain(path, { pipeline, scoreThreshold: 0.5, top, stride, maxPasses: 4096 })).maps;
        for (const c of correct) {
          if (c.index >= top) continue;
          const map = maps[c.index]!;
          row.correct++;
          if (inside(map.peak.box, c.truth)) row.peakInside++;
          if (overlaps(map.peak.box, c.truth)) row.peakOverlaps++;
          if (!parts.has('sanity')) continue;
          const random = (await shuffled.explain(path, { pipeline, box: c.d.box.join(','), label: c.d.label, stride, maxPasses: 4096 })).maps[0]!;
          if (inside(random.peak.box, c.truth)) row.shuffledPeakInside++;
          const changed = map.drops.flatMap((d, i) => (d !== 0 || random.drops[i] !== 0 ? [i] : []));
          row.correlation.push(spearman(changed.map((i) => map.drops[i]!), changed.map((i) => random.drops[i]!)));
        }
        process.stderr.write('.');
      }
      process.stderr.write(`\n${pipeline}: ${row.peakInside}/${row.correct}\n`);
      rows.push(row);
    }

    const pct = (a: number, b: number) => (b ? `${((100 * a) / b).toFixed(1)}%` : 'n/a');
    const median = (v: number[]) => (v.length ? [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]! : NaN);
    console.log(`machine: ${cpus()[0]?.model} x ${availableParallelism()}, ${threads} ONNX Runtime threads; ${count} images of seed ${seed}; patch 32, stride ${stride}`);
    if (rows.length) console.log('\npipeline      correct  peak in GT box  peak square overlaps it  shuffled head: peak in GT  median rank corr.  provenance IoU>=0.3');
    for (const r of rows) {
      console.log(
        `${r.pipeline.padEnd(12)}  ${String(r.correct).padStart(7)}  ${pct(r.peakInside, r.correct).padStart(14)}  ${pct(r.peakOverlaps, r.correct).padStart(23)}  ${(parts.has('sanity') ? pct(r.shuffledPeakInside, r.correct) : '-').padStart(25)}  ${(parts.has('sanity') ? median(r.correlation).toFixed(3) : '-').padStart(17)}  ${pct(r.provenanceOk, r.detections).padStart(10)} of ${r.detections}`,
      );
    }

    // Cost: one detection on a 512 x 512 image.
    const square = await sharp(join(data, dataset.images[0]!.file_name)).resize(512, 512, { fit: 'fill' }).png().toBuffer();
    if (parts.has('views')) await viewsCost(square);
    if (!parts.has('cost')) return;
    const cost: Record<string, Record<string, number | string>> = {};
    for (const pipeline of PIPELINES) {
      const at = async (stride: number, maxPasses?: number) => {
        const r: ExplainResult = await detector.explain(square, { pipeline, scoreThreshold: 0.3, top: 1, stride, maxPasses });
        return r.maps.length ? `${r.cost.passes} passes, ${Math.round(r.cost.ms)} ms` : 'no detection';
      };
      const refused = await detector.explain(square, { pipeline, scoreThreshold: 0.3, top: 1, stride: 8 }).then(
        () => 'accepted',
        (e: unknown) => (e instanceof DetectError ? e.code : String(e)),
      );
      cost[pipeline] = { 'patch 32, stride 32 (default)': await at(32), 'patch 32, stride 16': await at(16), 'stride 8, default budget': refused, 'stride 8, maxPasses 4096': await at(8, 4096) };
    }

    console.log('\nexplain, one detection, 512 x 512 image:');
    for (const [pipeline, c] of Object.entries(cost)) console.log(`  ${pipeline.padEnd(12)} ${Object.entries(c).map(([k, v]) => `${k}: ${v}`).join('; ')}`);
  } finally {
    await detector.close();
    await shuffled.close();
    rmSync(data, { recursive: true, force: true });
    rmSync(shuffledDir, { recursive: true, force: true });
  }
}

/** Seconds per detection of each pipeline with the layers exposed and without, runs alternating; the ratio on / off. */
async function viewsCost(image: Buffer, rounds = 15) {
  const plain = await Detector.load(DEFAULT_MODEL, { intraOpThreads: threads });
  const viewed = await Detector.load(DEFAULT_MODEL, { intraOpThreads: threads, featureLayers: true });
  console.log(`\nfeature views' cost (featureLayers on / off), ${rounds} alternating runs each, median ms per detection:`);
  try {
    for (const pipeline of ['fast-rcnn', 'faster-rcnn'] as const) {
      const options = { pipeline, ...(pipeline === 'faster-rcnn' && { scales: 'single' as const }), proposals: pipeline === 'fast-rcnn' ? [[0, 0, 100, 100]] : undefined };
      const times = { off: [] as number[], on: [] as number[] };
      for (let i = 0; i < rounds + 2; i++) {
        for (const [name, d] of [['off', plain], ['on', viewed]] as const) {
          const t = performance.now();
          await d.detect(image, options);
          if (i >= 2) times[name].push(performance.now() - t);
        }
      }
      const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]!;
      console.log(`  ${pipeline.padEnd(12)} off ${median(times.off).toFixed(1)} ms, on ${median(times.on).toFixed(1)} ms: ratio ${(median(times.on) / median(times.off)).toFixed(3)}`);
    }
  } finally {
    await plain.close();
    await viewed.close();
  }
}

await main();
