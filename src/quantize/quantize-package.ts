/**
 * `rcnn-serve models quantize`: an fp32 package in, an int8 one out.
 *
 * 1. Plan every graph (onnx/qdq.ts): what becomes int8, what stays float,
 *    which tensors need a range. Refuses a package that is int8 already and
 *    graphs with ops the quantizer does not handle, before any work.
 * 2. Calibrate: the package runs its own pipelines (every one it has) on the
 *    calibration images, with the planned tensors added as graph outputs, so
 *    that each head is calibrated on the RoI features it really sees. Images
 *    run one by one in order: the same images give the same ranges.
 * 3. Write: the QDQ graphs and a model.json stating the precision and the
 *    calibration, into a temporary folder moved into place at the end, so
 *    that a failure leaves nothing half written. With `keepFp32`, the fp32
 *    graphs are kept and the ranges recorded: the package serves both
 *    precisions, int8 built at load (how the shipped default fits models/'s
 *    size budget).
 */

import { createHash } from 'node:crypto';
import { copyFile, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DEFAULT_PERCENTILE, TensorStatistics, type CalibrationMethod } from '../core/quantize.js';
import { Detector, PIPELINES } from '../detector.js';
import { QuantizeError } from '../errors.js';
import { graphsOf } from '../model/manifest.js';
import type { ModelManifest, QuantizationSpec } from '../model/manifest-schema.js';
import { readManifest, resolveModelDir } from '../model/package.js';
import { floatValueInfo, readModel, writeModel, type EditableModel } from '../onnx/model.js';
import { planQuantization, quantizeGraph, type QuantizationPlan } from '../onnx/qdq.js';
import { calibrationImages } from './calibration-images.js';
import { checkNewFolder, writePackage } from './write-package.js';

export interface QuantizeOptions {
  /** A folder of images, a manifest or a COCO annotations file. */
  calibration: string;
  /** The new package's folder; must not exist. */
  out: string;
  count: number;
  method: CalibrationMethod;
  /** The percentile method's share, in percent (default 99.999). */
  percentile?: number;
  /** Keep the fp32 graphs and record the ranges: one package, both precisions. */
  keepFp32?: boolean;
  /** Conv, Gemm or MatMul nodes to keep in fp32, by name. */
  keepFloat?: readonly string[];
  /** Called after each calibration image. */
  onProgress?: (done: number, total: number) => void;
}

export interface QuantizeReport {
  out: string;
  name: string;
  graphs: Record<string, { int8Nodes: number; floatNodes: number; bytesBefore: number; bytesAfter: number }>;
  calibration: QuantizationSpec['calibration'];
  seconds: number;
}

interface GraphWork {
  file: string;
  model: EditableModel;
  bytes: number;
  plan: QuantizationPlan;
  stats: Map<string, TensorStatistics>;
}

/** Plan each graph of the package; a refusal names the graph. */
async function planGraphs(dir: string, manifest: ModelManifest, keepFloat: ReadonlySet<string>): Promise<GraphWork[]> {
  const stored = manifest.precision ?? 'fp32';
  if (stored !== 'fp32') throw new QuantizeError('ALREADY_QUANTIZED', `${manifest.name} is an ${stored} package already (model.json precision: ${stored}); quantize its fp32 source`);
  const work: GraphWork[] = [];
  for (const file of graphsOf(manifest).keys()) {
    const bytes = await readFile(join(dir, file));
    try {
      const model = readModel(bytes);
      work.push({ file, model, bytes: bytes.length, plan: planQuantization(model, keepFloat), stats: new Map() });
    } catch (err) {
      if (err instanceof QuantizeError) throw new QuantizeError(err.code, `${file}: ${err.message}`, { cause: err });
      if (err instanceof RangeError) throw new QuantizeError('UNSUPPORTED_GRAPH', `${file}: ${err.message}`, { cause: err });
      throw err;
    }
  }
  const known = new Set(work.flatMap((w) => [...w.plan.int8Nodes, ...w.plan.floatNodes.map((f) => f.node)]));
  const unknown = [...keepFloat].filter((n) => !known.has(n));
  if (unknown.length) throw new QuantizeError('UNSUPPORTED_GRAPH', `--keep-float names ${unknown.join(', ')}, which no graph has as a Conv, Gemm or MatMul`);
  return work;
}

/** The graph with every tensor to calibrate added as an output. */
function withCalibrationOutputs(w: GraphWork): Uint8Array {
  const present = new Set(w.model.outputs.map((o) => o.name));
  const extra = w.plan.calibrate.filter((t) => !present.has(t)).map((name) => ({ name, encoded: floatValueInfo(name) }));
  return writeModel({ ...w.model, outputs: [...w.model.outputs, ...extra] });
}

/** Run the package's pipelines on the images, collecting each planned tensor's statistics. @returns the images' SHA-256. */
async function calibrate(dir: string, work: GraphWork[], files: readonly string[], onProgress?: QuantizeOptions['onProgress']): Promise<{ sha256: string; pipelines: string[] }> {
  const byFile = new Map(work.map((w) => [w.file, w]));
  const detector = await Detector.load(dir, {
    graphHooks: {
      rewrite: (file) => withCalibrationOutputs(byFile.get(file)!),
      observe: (file, outputs) => {
        const w = byFile.get(file)!;
        for (const t of w.plan.calibrate) {
          const value = outputs[t];
          if (!value) continue;
          let s = w.stats.get(t);
          if (!s) w.stats.set(t, (s = new TensorStatistics()));
          s.add(value.data);
        }
      },
    },
  });
  const hash = createHash('sha256');
  try {
    for (const [i, file] of files.entries()) {
      let bytes: Uint8Array;
      try {
        bytes = await readFile(file);
      } catch (err) {
        throw new QuantizeError('CALIBRATION_IMAGES', `calibration image ${file} cannot be read: ${(err as Error).message}`, { cause: err });
      }
      hash.update(bytes);
      for (const pipeline of detector.pipelines) {
        try {
          await detector.detect(bytes, { pipeline });
        } catch (err) {
          const code = (err as { code?: string }).code;
          if (code === 'CORRUPT_IMAGE' || code === 'UNSUPPORTED_FORMAT' || code === 'EMPTY_IMAGE' || code === 'IMAGE_TOO_LARGE') {
            throw new QuantizeError('CALIBRATION_IMAGES', `calibration image ${file}: ${(err as Error).message}`, { cause: err });
          }
          throw err;
        }
      }
      onProgress?.(i + 1, files.length);
    }
    return { sha256: hash.digest('hex'), pipelines: [...detector.pipelines] };
  } finally {
    await detector.close();
  }
}

/** Quantize a package. @throws QuantizeError (codes in errors.ts), DetectError for a package that does not load. */
export async function quantizePackage(nameOrDir: string, options: QuantizeOptions): Promise<QuantizeReport> {
  const started = performance.now();
  const dir = await resolveModelDir(nameOrDir);
  const manifest = await readManifest(dir);
  const keepFloat = new Set(options.keepFloat ?? []);
  const work = await planGraphs(dir, manifest, keepFloat);
  await checkNewFolder(options.out);
  const images = await calibrationImages(options.calibration, options.count);
  const { sha256, pipelines } = await calibrate(dir, work, images.files, options.onProgress);

  const percentile = options.method === 'percentile' ? (options.percentile ?? DEFAULT_PERCENTILE) : undefined;
  const calibration: QuantizationSpec['calibration'] = {
    method: options.method,
    ...(percentile !== undefined && { percentile }),
    images: images.label,
    count: images.files.length,
    sha256,
    pipelines: PIPELINES.filter((p) => pipelines.includes(p)),
  };
  const graphs: QuantizationSpec['graphs'] = {};
  for (const w of work) {
    const ranges: Record<string, [number, number]> = {};
    for (const t of w.plan.calibrate) {
      const s = w.stats.get(t);
      if (!s) throw new QuantizeError('UNSUPPORTED_GRAPH', `${w.file}: tensor ${t} was never computed by the package's pipelines on the calibration images, so it has no range`);
      const [lo, hi] = s.range(options.method, percentile);
      ranges[t] = [Math.fround(lo), Math.fround(hi)];
    }
    graphs[w.file] = { int8Nodes: w.plan.int8Nodes, floatNodes: w.plan.floatNodes, ranges };
  }
  const quantization: QuantizationSpec = { scheme: 'qdq-u8s8', calibration, graphs };
  const name = options.keepFp32 ? manifest.name : `${manifest.name}-int8`;
  const out: ModelManifest = {
    ...manifest,
    name,
    description: `${manifest.description ?? manifest.name}; ${options.keepFp32 ? 'with int8 built at load from' : 'int8 (QDQ), quantized from'} ${manifest.name} by rcnn-serve models quantize`,
    precision: options.keepFp32 ? 'fp32' : 'int8',
    quantization,
  };

  const report: QuantizeReport = { out: options.out, name, graphs: {}, calibration, seconds: 0 };
  await writePackage(options.out, async (tmp) => {
    for (const w of work) {
      const ranges = new Map(Object.entries(graphs[w.file]!.ranges));
      const bytes = options.keepFp32 ? await readFile(join(dir, w.file)) : writeModel(quantizeGraph(w.model, ranges, keepFloat));
      await writeFile(join(tmp, w.file), bytes);
      report.graphs[w.file] = { int8Nodes: w.plan.int8Nodes.length, floatNodes: w.plan.floatNodes.length, bytesBefore: w.bytes, bytesAfter: bytes.length };
    }
    if (manifest.classifier) await copyFile(join(dir, manifest.classifier.file), join(tmp, manifest.classifier.file));
    await writeFile(join(tmp, 'model.json'), `${JSON.stringify(out, null, 2)}\n`);
  });
  report.seconds = (performance.now() - started) / 1000;
  return report;
}
