/**
 * `rcnn-serve models quantize PACKAGE --precision fp16`: an fp32 package in,
 * a float16 one out, for GPUs (half the bytes to read, tensor-core
 * convolutions). Each graph is converted by onnx/fp16.ts, its inputs and
 * outputs still float32, so the pipelines run it unchanged. No calibration:
 * float16 keeps about three significant digits over the whole range of
 * values these networks produce.
 */

import { copyFile, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { QuantizeError } from '../errors.js';
import { graphsOf } from '../model/manifest.js';
import type { ModelManifest } from '../model/manifest-schema.js';
import { readManifest, resolveModelDir } from '../model/package.js';
import { toFloat16Graph } from '../onnx/fp16.js';
import { readModel, writeModel } from '../onnx/model.js';
import { checkNewFolder, writePackage } from './write-package.js';

export interface Float16Report {
  out: string;
  name: string;
  graphs: Record<string, { initializers: number; clamped: number; bytesBefore: number; bytesAfter: number }>;
  seconds: number;
}

/** @throws QuantizeError (codes in errors.ts), DetectError for a package that does not load. */
export async function float16Package(nameOrDir: string, options: { out: string }): Promise<Float16Report> {
  const started = performance.now();
  const dir = await resolveModelDir(nameOrDir);
  const manifest = await readManifest(dir);
  const stored = manifest.precision ?? 'fp32';
  if (stored !== 'fp32') throw new QuantizeError('ALREADY_QUANTIZED', `${manifest.name} is an ${stored} package already (model.json precision: ${stored}); convert its fp32 source`);
  await checkNewFolder(options.out);

  // Convert every graph before writing any, so that a refusal writes nothing.
  const converted = new Map<string, { bytes: Uint8Array; initializers: number; clamped: number; bytesBefore: number }>();
  for (const file of graphsOf(manifest).keys()) {
    const source = await readFile(join(dir, file));
    try {
      const { model, initializers, clamped } = toFloat16Graph(readModel(source));
      converted.set(file, { bytes: writeModel(model), initializers, clamped, bytesBefore: source.length });
    } catch (err) {
      if (err instanceof QuantizeError) throw new QuantizeError(err.code, `${file}: ${err.message}`, { cause: err });
      if (err instanceof RangeError) throw new QuantizeError('UNSUPPORTED_GRAPH', `${file}: ${err.message}`, { cause: err });
      throw err;
    }
  }

  const name = `${manifest.name}-fp16`;
  const out: ModelManifest = {
    ...manifest,
    name,
    description: `${manifest.description ?? manifest.name}; fp16, converted from ${manifest.name} by rcnn-serve models quantize --precision fp16`,
    precision: 'fp16',
    quantization: undefined, // int8 ranges apply to fp32 graphs only
  };
  const report: Float16Report = { out: options.out, name, graphs: {}, seconds: 0 };
  await writePackage(options.out, async (tmp) => {
    for (const [file, c] of converted) {
      await writeFile(join(tmp, file), c.bytes);
      report.graphs[file] = { initializers: c.initializers, clamped: c.clamped, bytesBefore: c.bytesBefore, bytesAfter: c.bytes.length };
    }
    if (manifest.classifier) await copyFile(join(dir, manifest.classifier.file), join(tmp, manifest.classifier.file));
    await writeFile(join(tmp, 'model.json'), `${JSON.stringify(out, null, 2)}\n`);
  });
  report.seconds = (performance.now() - started) / 1000;
  return report;
}
