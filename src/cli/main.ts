/**
 * The rcnn-serve command line. Exit codes: 0 success, 1 some input or the
 * model failed, 2 bad usage.
 */

import { availableParallelism } from 'node:os';
import { readFile, writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { configFromEnv, ConfigError } from '../config/env.js';
import { MODES } from '../core/selective-search/selective-search.js';
import { serve, StartError } from '../http/server.js';
import { onStopRequest } from './stop-signals.js';
import { RegionProposer } from '../proposals.js';
import { DEFAULT_MODEL } from '../model/package.js';
import { Detector, PIPELINES, type DetectionResult } from '../detector.js';
import { DetectError } from '../errors.js';
import { DATASET_SPLITS, generateDataset } from '../dataset/generate.js';
import type { CocoResult } from '../dataset/coco.js';
import { CocoIds, readCocoDataset } from '../eval/coco-results.js';
import { evalCommand, EVAL_USAGE } from './eval.js';
import { modelsCommand, MODELS_USAGE } from './models.js';
import { batchCommand, BATCH_USAGE } from './batch.js';
import { EXECUTION_PROVIDERS } from '../runtime/session.js';

const VERSION = '0.1.0';

const USAGE = `rcnn-serve ${VERSION}: R-CNN family object detection (region ops in TypeScript, convolutions in ONNX Runtime)

Usage:
  rcnn-serve detect IMAGE... [options]      detect objects; one result per image, in input order
  rcnn-serve proposals IMAGE... [options]   region proposals (selective search); one result per image
  rcnn-serve serve                          the HTTP service; configured by environment variables (see README)
  rcnn-serve batch INPUT... --out FILE      many images through servers (--url) or in-process (--local), resumable
  rcnn-serve dataset --out DIR [options]    write a synthetic detection dataset (images + COCO annotations.json)
  rcnn-serve eval --gt FILE [options]       COCO AP of detections, recall of proposals
  rcnn-serve models inspect NAME_OR_DIR     layer tables of a package's graphs (shapes, parameters, multiply-adds)
  rcnn-serve --help | --version

detect options:
  --model NAME_OR_DIR      model package: a folder, or a name under models/ (default: ${DEFAULT_MODEL})
  --pipeline NAME          ${PIPELINES.join(' | ')} (default: the newest the model has)
  --score-threshold S      keep detections scoring above S, 0..1 (default: the model's)
  --iou-threshold T        per-class NMS IoU threshold, 0..1 (default: the model's)
  --max-detections N       at most N detections per image (default: the model's)
  --proposals FILE         rcnn / fast-rcnn: regions to score instead of selective search's: a JSON array of
                           [x1,y1,x2,y2] for every image, or the JSON lines of 'rcnn-serve proposals --json' (by path)
  --mode M, --max-proposals N
                           rcnn / fast-rcnn: selective search's mode and region count instead of the model's
  --proposals-max-pixels N rcnn / fast-rcnn: run selective search on images of up to N pixels (default: 4000000;
                           its time and memory grow with the pixels); larger ones need --proposals
  --scales single|multi    faster-rcnn: 'multi' (the default where the model has test scales) runs the image at each
                           of the model's test scales and merges the detections; 'single' at its input size, faster
  --coco-results FILE      also write the detections as COCO results (a JSON array)
  --gt FILE                with --coco-results: COCO ground truth giving image ids (by file name) and category ids
  --device D               ${Object.keys(EXECUTION_PROVIDERS).join(' | ')} (default: cpu)
  --threads N              ONNX Runtime intra-op threads (default: all cores)
  --max-pixels N           refuse images over N pixels (default: 40000000)
  --max-bytes N            refuse inputs over N bytes (default: 20971520)
  --json                   one JSON object per line:
                           {"path","model","pipeline","image":{"width","height"},
                            "detections":[{"box":[x1,y1,x2,y2],"label","classId","score"}],"timings":{...,"total"}}
                           or {"path","error":{"code","message"}} for an image that failed
  --verbose                stack traces on errors

proposals options:
  --method M               selective-search (default) or rpn: a Faster R-CNN model's RPN (--model, default ${DEFAULT_MODEL};
                           lines then carry "model" and "scores", by decreasing objectness)
  --model NAME_OR_DIR      with --method rpn
  --mode M                 ${MODES.join(' | ')} (default: fast)
  --max N                  at most N proposals, best first
  --min-size N             drop boxes narrower or shorter than N pixels
  --seed S                 ranking seed (default 0): same image, options and seed -> same proposals
  --workers N              worker threads for the strategies (default: ${defaultWorkers()}); output does not depend on it
  --json                   one JSON object per line:
                           {"path","image":{"width","height"},"method","mode","proposals":[[x1,y1,x2,y2],...],"timings":{...,"total"}}
  --max-pixels N           refuse images over N pixels (default: 4000000: under 1 GB peak per worker)
  --max-bytes, --verbose   as for detect

dataset options:
  --split NAME             ${Object.entries(DATASET_SPLITS).map(([n, s]) => `${n} (seed ${s.seed}, ${s.count} images)`).join(', ')}
  --seed S --count N       any other seed and size (image i of a seed is the same whatever the count)
  --out DIR                writes DIR/images/NNNNNN.jpg and DIR/annotations.json

${BATCH_USAGE}

${EVAL_USAGE}

${MODELS_USAGE}

Boxes are in original-image pixels (after EXIF rotation), x1 y1 x2 y2.
Exit status: 0 all images done, 1 an image or the model failed, 2 bad usage (batch: see above).`;

const COMMON_OPTIONS = {
  'max-pixels': { type: 'string' },
  'max-bytes': { type: 'string' },
  json: { type: 'boolean' },
  verbose: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies ParseArgsConfig['options'];

const PROPOSALS_OPTIONS = {
  ...COMMON_OPTIONS,
  method: { type: 'string' },
  model: { type: 'string' },
  mode: { type: 'string' },
  max: { type: 'string' },
  'min-size': { type: 'string' },
  seed: { type: 'string' },
  workers: { type: 'string' },
} as const satisfies ParseArgsConfig['options'];

const DATASET_OPTIONS = {
  split: { type: 'string' },
  seed: { type: 'string' },
  count: { type: 'string' },
  out: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies ParseArgsConfig['options'];

const DETECT_OPTIONS = {
  model: { type: 'string' },
  pipeline: { type: 'string' },
  'score-threshold': { type: 'string' },
  'iou-threshold': { type: 'string' },
  'max-detections': { type: 'string' },
  proposals: { type: 'string' },
  mode: { type: 'string' },
  'max-proposals': { type: 'string' },
  'proposals-max-pixels': { type: 'string' },
  scales: { type: 'string' },
  'coco-results': { type: 'string' },
  gt: { type: 'string' },
  device: { type: 'string' },
  threads: { type: 'string' },
  ...COMMON_OPTIONS,
} as const satisfies ParseArgsConfig['options'];

export interface CliIo {
  out: (line: string) => void;
  err: (line: string) => void;
}

const stdio: CliIo = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
};

class UsageError extends Error {}

function numberOption(flag: string, raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const v = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(v)) throw new UsageError(`--${flag} needs a number, got ${JSON.stringify(raw)}`);
  return v;
}

function describeError(err: unknown, verbose: boolean): { code: string; message: string; stack?: string } {
  if (err instanceof DetectError) return { code: err.code, message: err.message, stack: verbose ? err.stack : undefined };
  const e = err as Error;
  return { code: 'INTERNAL_ERROR', message: e?.message ?? String(err), stack: verbose ? e?.stack : undefined };
}

function formatResult(path: string, r: DetectionResult): string[] {
  const lines = [`${path}  ${r.image.width}x${r.image.height}  ${r.model} ${r.pipeline}  ${r.detections.length} detection(s)  ${r.timings.total} ms`];
  const width = Math.max(5, ...r.detections.map((d) => d.label.length));
  for (const d of r.detections) {
    lines.push(`  ${d.label.padEnd(width)}  ${d.score.toFixed(3)}  [${d.box.map((v) => v.toFixed(1)).join(', ')}]`);
  }
  return lines;
}

async function detect(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, options: DETECT_OPTIONS, allowPositionals: true, strict: true });
  if (values.help) {
    io.out(USAGE);
    return 0;
  }
  if (positionals.length === 0) throw new UsageError('detect needs at least one IMAGE');
  const options = {
    pipeline: values.pipeline,
    scoreThreshold: numberOption('score-threshold', values['score-threshold']),
    iouThreshold: numberOption('iou-threshold', values['iou-threshold']),
    maxDetections: numberOption('max-detections', values['max-detections']),
    proposalMode: values.mode,
    maxProposals: numberOption('max-proposals', values['max-proposals']),
    scales: values.scales,
  };
  const verbose = values.verbose ?? false;
  let detector: Detector;
  try {
    detector = await Detector.load(values.model ?? DEFAULT_MODEL, {
      device: values.device ?? 'cpu',
      intraOpThreads: numberOption('threads', values.threads) ?? 0,
      limits: limitsFrom(values),
      proposalMaxPixels: numberOption('proposals-max-pixels', values['proposals-max-pixels']),
      onWarning: (m) => io.err(`warning: ${m}`),
    });
  } catch (err) {
    const e = describeError(err, verbose);
    io.err(`error: ${e.code}: ${e.message}`);
    if (e.stack) io.err(e.stack);
    return 1;
  }
  const regions = values.proposals === undefined ? undefined : await readProposalsFile(values.proposals);
  const cocoPath = values['coco-results'];
  if (values.gt && !cocoPath) throw new UsageError('--gt goes with --coco-results');
  const ids = cocoPath ? new CocoIds(values.gt ? { dataset: await readCocoDataset(values.gt), path: values.gt } : undefined) : undefined;
  const coco: CocoResult[] = [];
  try {
    const status = await forEachImage(positionals, io, values.json ?? false, verbose, async (path, index) => {
      const result = await detector.detect(path, { ...options, proposals: regions?.(path) });
      if (ids) coco.push(...ids.results(path, index, result));
      return { json: { path, ...result }, text: formatResult(path, result) };
    });
    if (cocoPath) await writeFile(cocoPath, JSON.stringify(coco));
    return status;
  } finally {
    await detector.close();
  }
}

/**
 * A --proposals file: one JSON array of boxes for every image, or JSON lines
 * with "path" and "proposals" (the proposals command's --json output).
 * @returns the boxes for an image path.
 */
async function readProposalsFile(file: string): Promise<(path: string) => number[][]> {
  const text = await readFile(file, 'utf8').catch(() => {
    throw new UsageError(`--proposals ${file}: cannot read it`);
  });
  const trimmed = text.trim();
  if (trimmed.startsWith('[')) {
    const boxes = JSON.parse(trimmed) as number[][];
    return () => boxes;
  }
  const byPath = new Map<string, number[][]>();
  for (const [i, line] of trimmed.split('\n').entries()) {
    let r: { path?: string; proposals?: number[][] };
    try {
      r = JSON.parse(line);
    } catch {
      throw new UsageError(`--proposals ${file}: line ${i + 1} is not JSON`);
    }
    if (typeof r.path === 'string' && Array.isArray(r.proposals)) byPath.set(resolve(r.path), r.proposals);
  }
  return (path) => {
    const boxes = byPath.get(resolve(path));
    if (!boxes) throw new DetectError('INVALID_OPTION', `--proposals ${file} has no line for ${path}`);
    return boxes;
  };
}

function limitsFrom(values: { 'max-pixels'?: string; 'max-bytes'?: string }) {
  return {
    ...(values['max-pixels'] !== undefined && { maxPixels: numberOption('max-pixels', values['max-pixels']) }),
    ...(values['max-bytes'] !== undefined && { maxBytes: numberOption('max-bytes', values['max-bytes']) }),
  };
}

function defaultWorkers(): number {
  return Math.min(4, availableParallelism());
}

/**
 * Run `work` on each image in order; one output line (JSON) or block (text)
 * per image, an error line for an image that fails, and the other images
 * still run. A bad option fails every image alike, so it stops at the first.
 * @returns exit status: 0 if all succeeded, else 1.
 */
async function forEachImage(
  paths: string[],
  io: CliIo,
  json: boolean,
  verbose: boolean,
  work: (path: string, index: number) => Promise<{ json: object; text: string[] }>,
): Promise<number> {
  let failed = 0;
  for (const [i, path] of paths.entries()) {
    try {
      const out = await work(path, i);
      if (json) io.out(JSON.stringify(out.json));
      else out.text.forEach((l) => io.out(l));
    } catch (err) {
      failed++;
      const e = describeError(err, verbose);
      if (json) io.out(JSON.stringify({ path, error: { code: e.code, message: e.message } }));
      io.err(`error: ${path}: ${e.code}: ${e.message}`);
      if (e.stack) io.err(e.stack);
      if (err instanceof DetectError && (err.code === 'INVALID_OPTION' || err.code === 'UNSUPPORTED_PIPELINE')) {
        failed += paths.length - i - 1;
        break;
      }
    }
  }
  return failed > 0 ? 1 : 0;
}

async function proposals(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, options: PROPOSALS_OPTIONS, allowPositionals: true, strict: true });
  if (values.help) {
    io.out(USAGE);
    return 0;
  }
  if (positionals.length === 0) throw new UsageError('proposals needs at least one IMAGE');
  const method = values.method ?? 'selective-search';
  if (method !== 'selective-search' && method !== 'rpn') throw new UsageError(`--method ${JSON.stringify(values.method)} is not supported; allowed: selective-search, rpn`);
  if (method === 'rpn') return rpnProposals(positionals, values, io);
  if (values.model !== undefined) throw new UsageError('--model goes with --method rpn');
  const options = {
    mode: values.mode,
    seed: numberOption('seed', values.seed),
    maxProposals: numberOption('max', values.max),
    minSize: numberOption('min-size', values['min-size']),
  };
  const proposer = new RegionProposer({ workers: numberOption('workers', values.workers) ?? defaultWorkers(), limits: limitsFrom(values) });
  try {
    return await forEachImage(positionals, io, values.json ?? false, values.verbose ?? false, async (path) => {
      const r = await proposer.propose(path, options);
      return {
        json: { path, ...r },
        text: [`${path}  ${r.image.width}x${r.image.height}  selective-search ${r.mode}  ${r.proposals.length} proposal(s)  ${r.timings.total} ms`],
      };
    });
  } finally {
    await proposer.close();
  }
}

async function dataset(argv: string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({ args: argv, options: DATASET_OPTIONS, strict: true });
  if (values.help) {
    io.out(USAGE);
    return 0;
  }
  if (!values.out) throw new UsageError('dataset needs --out DIR');
  let seed = numberOption('seed', values.seed);
  let count = numberOption('count', values.count);
  if (values.split !== undefined) {
    const split = DATASET_SPLITS[values.split as keyof typeof DATASET_SPLITS];
    if (!split) throw new UsageError(`--split ${JSON.stringify(values.split)} is unknown; allowed: ${Object.keys(DATASET_SPLITS).join(', ')}`);
    seed ??= split.seed;
    count ??= split.count;
  }
  if (seed === undefined || !Number.isInteger(seed) || seed < 0 || seed >= 2 ** 32) throw new UsageError('dataset needs --split NAME or --seed S, an integer from 0 to 2^32-1');
  if (count === undefined || !Number.isInteger(count) || count < 1) throw new UsageError('dataset needs --count N, a positive integer (or --split NAME)');
  const started = performance.now();
  const written = await generateDataset({
    seed,
    count,
    out: values.out,
    onProgress: (done) => done % 100 === 0 && io.err(`${done}/${count} images`),
  });
  io.out(`${values.out}: ${written.images.length} images, ${written.annotations.length} objects, seed ${seed}, ${((performance.now() - started) / 1000).toFixed(1)} s`);
  return 0;
}

async function rpnProposals(paths: string[], values: { model?: string; max?: string; json?: boolean; verbose?: boolean; mode?: string; seed?: string; 'max-pixels'?: string; 'max-bytes'?: string }, io: CliIo): Promise<number> {
  if (values.mode !== undefined || values.seed !== undefined) throw new UsageError('--mode and --seed are selective-search options');
  const detector = await Detector.load(values.model ?? DEFAULT_MODEL, { limits: limitsFrom(values), onWarning: (m) => io.err(`warning: ${m}`) });
  try {
    const maxProposals = numberOption('max', values.max);
    return await forEachImage(paths, io, values.json ?? false, values.verbose ?? false, async (path) => {
      const r = await detector.rpnProposals(path, { maxProposals });
      return { json: { path, ...r }, text: [`${path}  ${r.image.width}x${r.image.height}  ${r.model} rpn  ${r.proposals.length} proposal(s)  ${r.timings.total} ms`] };
    });
  } finally {
    await detector.close();
  }
}

async function serveCommand(io: CliIo): Promise<number> {
  let config;
  try {
    config = configFromEnv();
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    io.err(`error: CONFIG: ${err.message}`);
    return 2;
  }
  let server: Awaited<ReturnType<typeof serve>>;
  try {
    server = await serve(config);
  } catch (err) {
    if (!(err instanceof StartError)) throw err;
    io.err(`error: START: ${err.message}`);
    return 1;
  }
  const why = await new Promise<string>((resolve) => onStopRequest(resolve));
  io.err(`serve: stopping (${why}): finishing the requests in flight`);
  await server.close();
  return 0;
}

/** Run the CLI; resolves to the exit status. */
export async function main(argv: string[], io: CliIo = stdio): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case undefined:
      case '--help':
      case '-h':
      case 'help':
        io.out(USAGE);
        return command === undefined ? 2 : 0;
      case '--version':
        io.out(VERSION);
        return 0;
      case 'detect':
        return await detect(rest, io);
      case 'proposals':
        return await proposals(rest, io);
      case 'serve':
        return await serveCommand(io);
      case 'dataset':
        return await dataset(rest, io);
      case 'batch':
        return await batchCommand(rest, { ...io, tty: io === stdio && process.stderr.isTTY === true }, (m) => new UsageError(m));
      case 'eval':
        return await evalCommand(rest, io.out, (m) => new UsageError(m));
      case 'models':
        return await modelsCommand(rest, io.out, (m) => new UsageError(m));
      default:
        throw new UsageError(`unknown command ${JSON.stringify(command)}; commands: detect, proposals, serve, batch, dataset, eval, models`);
    }
  } catch (err) {
    if (err instanceof UsageError || (err as NodeJS.ErrnoException).code?.startsWith('ERR_PARSE_ARGS')) {
      io.err(`usage error: ${(err as Error).message}\nRun 'rcnn-serve --help' for usage.`);
      return 2;
    }
    const e = describeError(err, argv.includes('--verbose'));
    io.err(`error: ${e.code}: ${e.message}`);
    if (e.stack) io.err(e.stack);
    return 1;
  }
}
