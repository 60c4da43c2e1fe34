/**
 * `rcnn-serve models quantize` end to end on the shipped package (the one
 * with all three pipelines), calibrated on eight 160 px tiles of the
 * synthetic shapes so that R-CNN's selective search stays small: the int8
 * package runs every pipeline and agrees with fp32, both package forms
 * (stored QDQ graphs; fp32 graphs plus ranges, int8 built at load) give the
 * same bytes, calibration is deterministic, and every refusal leaves
 * nothing behind. `--precision fp16` likewise: a float16 package that runs
 * every pipeline (on the CPU here, as on a GPU) and agrees with fp32.
 */

import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { Detector, PIPELINES } from '../../src/detector.js';
import type { ModelManifest } from '../../src/model/manifest-schema.js';
import { int8Graph } from '../../src/model/package.js';
import { detectionAgreement } from '../helpers/agreement.js';
import { fixturePath } from '../helpers/fixtures.js';

const SAMPLE = fixturePath('images', 'shapes-val-000003.png');
let work: string, tiles: string, stored: string, both: string, half: string;

async function run(...argv: string[]) {
  const out: string[] = [], err: string[] = [];
  const status = await main(argv, { out: (l) => out.push(l), err: (l) => err.push(l) });
  return { status, out: out.join('\n'), err: err.join('\n') };
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'rcnn-serve-quantize-'));
  tiles = join(work, 'tiles');
  mkdirSync(tiles);
  // Eight 160 x 160 tiles of two validation images (355 x 370 and 495 x 291).
  let k = 0;
  for (const image of ['shapes-val-000003.png', 'shapes-val-000011.png']) {
    for (const [left, top] of [[0, 0], [160, 0], [0, 120], [160, 120]] as const) {
      await sharp(fixturePath('images', image)).extract({ left, top, width: 160, height: 160 }).png().toFile(join(tiles, `tile-${k++}.png`));
    }
  }
  stored = join(work, 'stored');
  both = join(work, 'both');
  const a = await run('models', 'quantize', 'shapes-vgg', '--calibration', tiles, '--count', '8', '--out', stored, '--method', 'minmax');
  expect(a.err).toContain('calibrated on 8/8 images');
  expect(a.status, a.err).toBe(0);
  const b = await run('models', 'quantize', 'shapes-vgg', '--calibration', tiles, '--count', '8', '--out', both, '--method', 'minmax', '--keep-fp32', '--json');
  expect(b.status, b.err).toBe(0);
  half = join(work, 'half');
  const c = await run('models', 'quantize', 'shapes-vgg', '--precision', 'fp16', '--out', half);
  expect(c.status, c.err).toBe(0);
  expect(c.out).toMatch(/backbone\.onnx: 14 tensors in float16; 1\.92 -> 0\.96 MB/);
}, 300_000);

afterAll(() => rmSync(work, { recursive: true, force: true }));

const manifestOf = (dir: string) => JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8')) as ModelManifest;

describe('models quantize', () => {
  it('writes QDQ graphs a quarter the size, and a model.json saying how', () => {
    const m = manifestOf(stored);
    expect(m.name).toBe('shapes-vgg-int8');
    expect(m.precision).toBe('int8');
    expect(m.quantization!.calibration).toEqual({ method: 'minmax', images: 'tiles', count: 8, sha256: expect.stringMatching(/^[0-9a-f]{64}$/), pipelines: [...PIPELINES] });
    expect(m.quantization!.graphs['backbone.onnx']!.int8Nodes).toHaveLength(7);
    // The predictors write graph outputs: integer products with float outputs, so nothing stays fp32.
    expect(m.quantization!.graphs['box_head.onnx']!.int8Nodes.slice(-2)).toEqual(['/box_predictor/cls_score/Gemm', '/box_predictor/bbox_pred/Gemm']);
    for (const graph of Object.values(m.quantization!.graphs)) expect(graph.floatNodes).toEqual([]);
    for (const file of ['backbone.onnx', 'box_head.onnx', 'fast_rcnn_head.onnx', 'rcnn_head.onnx', 'rpn_head.onnx']) {
      const ratio = readFileSync(join(stored, file)).length / readFileSync(fixturePath('..', '..', 'models', 'shapes-vgg', file)).length;
      expect(ratio).toBeLessThan(0.32);
    }
    // The keep-fp32 form: the fp32 graphs as they were, the same ranges.
    const k = manifestOf(both);
    expect(k.name).toBe('shapes-vgg');
    expect(k.precision).toBe('fp32');
    expect(k.quantization!.graphs).toEqual(m.quantization!.graphs);
    expect(readFileSync(join(both, 'backbone.onnx')).equals(readFileSync(fixturePath('..', '..', 'models', 'shapes-vgg', 'backbone.onnx')))).toBe(true);
  });

  it('gives the same bytes for the same images: two calibrations agree, and load builds the stored graphs exactly', () => {
    // The two packages above were calibrated separately.
    const m = manifestOf(both);
    expect(m.quantization).toEqual(manifestOf(stored).quantization);
    for (const file of Object.keys(m.quantization!.graphs)) {
      // Buffer.equals: vitest's deep equality is slow on megabytes.
      expect(Buffer.from(int8Graph(m, file, readFileSync(join(both, file)), both)).equals(readFileSync(join(stored, file))), file).toBe(true);
    }
  });

  it('runs every pipeline in int8, stored or built at load, agreeing with fp32', async () => {
    const fp32 = await Detector.load('shapes-vgg');
    const int8 = await Detector.load(stored);
    const dual = await Detector.load(both);
    try {
      expect(int8.precisions).toEqual(['int8']);
      expect(dual.precisions).toEqual(['fp32', 'int8']);
      for (const pipeline of PIPELINES) {
        const reference = await fp32.detect(SAMPLE, { pipeline, scoreThreshold: 0.5 });
        const quantized = await int8.detect(SAMPLE, { pipeline, scoreThreshold: 0.5 });
        const built = await dual.detect(SAMPLE, { pipeline, scoreThreshold: 0.5, precision: 'int8' });
        expect(quantized.precision).toBe('int8');
        expect(built.precision).toBe('int8');
        // The graphs built at load are the stored ones: the same detections, to the last bit.
        expect(built.detections).toEqual(quantized.detections);
        expect((await dual.detect(SAMPLE, { pipeline, scoreThreshold: 0.5 })).detections).toEqual(reference.detections);
        const agreement = detectionAgreement(reference.detections, quantized.detections);
        expect(reference.detections.length).toBeGreaterThan(3);
        expect(agreement.ofFirst, `${pipeline}: ${JSON.stringify(agreement)}`).toBeGreaterThanOrEqual(0.8);
        expect(agreement.ofSecond, `${pipeline}: ${JSON.stringify(agreement)}`).toBeGreaterThanOrEqual(0.8);
      }
      await expect(int8.detect(SAMPLE, { precision: 'fp32' })).rejects.toMatchObject({ code: 'UNSUPPORTED_PRECISION', message: expect.stringContaining('it serves: int8') });
    } finally {
      await Promise.all([fp32.close(), int8.close(), dual.close()]);
    }
  }, 120_000);

  it('detect --precision int8 runs the shipped package in int8; int8 nodes that do not match the graph are refused at load', async () => {
    const cli = await run('detect', SAMPLE, '--precision', 'int8', '--json');
    expect(cli.status, cli.err).toBe(0);
    expect(JSON.parse(cli.out)).toMatchObject({ model: 'shapes-vgg', precision: 'int8' });
    const edited = join(work, 'edited');
    cpSync(both, edited, { recursive: true });
    const m = manifestOf(edited);
    m.quantization!.graphs['backbone.onnx']!.int8Nodes.pop();
    writeFileSync(join(edited, 'model.json'), JSON.stringify(m));
    const detector = await Detector.load(edited);
    try {
      await expect(detector.detect(SAMPLE, { precision: 'int8' })).rejects.toMatchObject({
        code: 'INVALID_MODEL',
        message: expect.stringContaining("quantization.graphs.backbone.onnx.int8Nodes (6) do not match the graph's quantizable nodes (7)"),
      });
      expect((await detector.detect(SAMPLE)).precision).toBe('fp32'); // the fp32 graphs still serve
    } finally {
      await detector.close();
    }
  });

  it('shows the precision and the int8 multiply-adds in models inspect', async () => {
    const text = await run('models', 'inspect', stored);
    expect(text.out).toContain('precision: int8 (int8 stored; calibrated (minmax) on 8 images of tiles through rcnn, fast-rcnn, faster-rcnn)');
    expect(text.out).toMatch(/backbone\.onnx[\s\S]*?total: [\d.]+ k parameters, [\d.]+ M multiply-adds, [\d.]+ M of them in int8/);
    const json = JSON.parse((await run('models', 'inspect', both, '--json')).out);
    const backbone = json.graphs['backbone.onnx'];
    expect(backbone.totals.int8Macs).toBe(backbone.totals.macs); // every backbone conv is int8
    const head = json.graphs['box_head.onnx'];
    expect(head.totals.int8Macs).toBe(head.totals.macs); // fc6, fc7 and the two predictors (MatMulInteger)
    expect(head.layers.find((l: { name: string }) => l.name === '/box_predictor/cls_score/Gemm')).toMatchObject({ precision: 'int8' });
  });

  it('refuses an int8 package, too few or unreadable images, and an existing folder, writing nothing', async () => {
    const out = join(work, 'refused');
    const refuse = async (args: string[], code: string, message: RegExp | string) => {
      const r = await run('models', 'quantize', ...args);
      expect(r.status, r.err).toBe(1);
      expect(r.err).toContain(`error: ${code}: `);
      expect(r.err).toMatch(message);
      expect(existsSync(out)).toBe(false);
      expect(readdirSync(work).filter((f) => f.includes('partial'))).toEqual([]);
    };
    await refuse([stored, '--calibration', tiles, '--count', '8', '--out', out], 'ALREADY_QUANTIZED', 'shapes-vgg-int8 is an int8 package already');
    await refuse(['shapes-vgg', '--calibration', tiles, '--count', '9', '--out', out], 'CALIBRATION_IMAGES', `${tiles} holds 8 images; the calibration asks for 9`);
    await refuse(['shapes-vgg', '--calibration', join(work, 'nowhere'), '--out', out], 'CALIBRATION_IMAGES', 'no such file or folder');
    const broken = join(work, 'broken');
    mkdirSync(broken);
    for (let i = 0; i < 8; i++) writeFileSync(join(broken, `img-${i}.png`), i === 3 ? 'not a png' : readFileSync(join(tiles, `tile-${i}.png`)));
    await refuse(['shapes-vgg', '--calibration', broken, '--count', '8', '--out', out], 'CALIBRATION_IMAGES', /calibration image .*img-3\.png: /);
    await refuse(['shapes-vgg', '--calibration', tiles, '--count', '8', '--out', stored], 'OUTPUT_EXISTS', 'exists already');
    const usage = await run('models', 'quantize', 'shapes-vgg', '--calibration', tiles, '--count', '2', '--out', out);
    expect(usage.status).toBe(2);
    expect(usage.err).toContain('--count needs an integer from 8');
  }, 120_000);

  it('--precision fp16 writes float16 graphs half the size that run every pipeline, agreeing with fp32', async () => {
    const m = manifestOf(half);
    expect(m).toMatchObject({ name: 'shapes-vgg-fp16', precision: 'fp16' });
    expect(m.quantization).toBeUndefined();
    for (const file of ['backbone.onnx', 'box_head.onnx', 'fast_rcnn_head.onnx', 'rcnn_head.onnx', 'rpn_head.onnx']) {
      const ratio = readFileSync(join(half, file)).length / readFileSync(fixturePath('..', '..', 'models', 'shapes-vgg', file)).length;
      expect(ratio).toBeGreaterThan(0.49);
      expect(ratio).toBeLessThan(0.51);
    }
    expect((await run('models', 'inspect', half)).out).toContain('precision: fp16');
    const fp32 = await Detector.load('shapes-vgg');
    const fp16 = await Detector.load(half);
    try {
      expect(fp16.precisions).toEqual(['fp16']);
      for (const pipeline of PIPELINES) {
        const reference = await fp32.detect(SAMPLE, { pipeline, scoreThreshold: 0.5 });
        const converted = await fp16.detect(SAMPLE, { pipeline, scoreThreshold: 0.5 });
        expect(converted.precision).toBe('fp16');
        expect(reference.detections.length).toBeGreaterThan(3);
        // Half precision keeps every detection: each one matched both ways, at IoU >= 0.95, the score within 0.01.
        const agreement = detectionAgreement(reference.detections, converted.detections, 0.95);
        expect(agreement, pipeline).toMatchObject({ ofFirst: 1, ofSecond: 1 });
        reference.detections.forEach((d, i) => expect(Math.abs(d.score - converted.detections[i]!.score), `${pipeline} ${i}`).toBeLessThan(0.01));
      }
      await expect(fp32.detect(SAMPLE, { precision: 'fp16' })).rejects.toMatchObject({
        code: 'UNSUPPORTED_PRECISION',
        message: 'model shapes-vgg has no fp16 graphs; it serves: fp32, int8 (make fp16 graphs with rcnn-serve models quantize --precision fp16)',
      });
    } finally {
      await Promise.all([fp32.close(), fp16.close()]);
    }
  }, 120_000);

  it('--precision fp16 refuses a package that is fp16 or int8 already, int8 options and an unknown precision', async () => {
    const out = join(work, 'refused-fp16');
    for (const [source, precision] of [[half, 'fp16'], [stored, 'int8']] as const) {
      const r = await run('models', 'quantize', source, '--precision', 'fp16', '--out', out);
      expect(r.status, r.err).toBe(1);
      expect(r.err).toContain(`error: ALREADY_QUANTIZED: shapes-vgg-${precision} is an ${precision} package already`);
    }
    const int8OfHalf = await run('models', 'quantize', half, '--calibration', tiles, '--count', '8', '--out', out);
    expect(int8OfHalf.err).toContain('error: ALREADY_QUANTIZED: shapes-vgg-fp16 is an fp16 package already');
    const mixed = await run('models', 'quantize', 'shapes-vgg', '--precision', 'fp16', '--calibration', tiles, '--out', out);
    expect(mixed.status).toBe(2);
    expect(mixed.err).toContain('--calibration is for int8; --precision fp16 takes only --out and --json');
    const unknown = await run('models', 'quantize', 'shapes-vgg', '--precision', 'fp8', '--out', out);
    expect(unknown.status).toBe(2);
    expect(unknown.err).toContain('--precision is "fp8"; allowed: int8, fp16');
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(work).filter((f) => f.includes('partial'))).toEqual([]);
  });
});
