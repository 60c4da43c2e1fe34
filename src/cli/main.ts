/**
 * The rcnn-serve command line. Exit codes: 0 success, 1 some input or the
 * model failed, 2 bad usage.
 */

import { parseArgs, type ParseArgsConfig } from 'node:util';
import { DEFAULT_MODEL } from '../model/package.js';
import { Detector, PIPELINES, type DetectionResult } from '../detector.js';
import { DetectError } from '../errors.js';
import { EXECUTION_PROVIDERS } from '../runtime/session.js';

const VERSION = '0.1.0';

const USAGE = `rcnn-serve ${VERSION}: R-CNN family object detection (region ops in TypeScript, convolutions in ONNX Runtime)

Usage:
  rcnn-serve detect IMAGE... [options]   detect objects; one result per image, in input order
  rcnn-serve --help | --version

detect options:
  --model NAME_OR_DIR      model package: a folder, or a name under models/ (default: ${DEFAULT_MODEL})
  --pipeline NAME          ${PIPELINES.join(' | ')} (default: the model's first)
  --score-threshold S      keep detections scoring above S, 0..1 (default: the model's)
  --iou-threshold T        per-class NMS IoU threshold, 0..1 (default: the model's)
  --max-detections N       at most N detections per image (default: the model's)
  --device D               ${Object.keys(EXECUTION_PROVIDERS).join(' | ')} (default: cpu)
  --threads N              ONNX Runtime intra-op threads (default: all cores)
  --max-pixels N           refuse images over N pixels (default: 40000000)
  --max-bytes N            refuse inputs over N bytes (default: 20971520)
  --json                   one JSON object per line:
                           {"path","model","pipeline","image":{"width","height"},
                            "detections":[{"box":[x1,y1,x2,y2],"label","classId","score"}],"timings":{...,"total"}}
                           or {"path","error":{"code","message"}} for an image that failed
  --verbose                stack traces on errors

Boxes are in original-image pixels (after EXIF rotation), x1 y1 x2 y2.
Exit status: 0 all images done, 1 an image or the model failed, 2 bad usage.`;

const DETECT_OPTIONS = {
  model: { type: 'string' },
  pipeline: { type: 'string' },
  'score-threshold': { type: 'string' },
  'iou-threshold': { type: 'string' },
  'max-detections': { type: 'string' },
  device: { type: 'string' },
  threads: { type: 'string' },
  'max-pixels': { type: 'string' },
  'max-bytes': { type: 'string' },
  json: { type: 'boolean' },
  verbose: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
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
  };
  const verbose = values.verbose ?? false;
  let detector: Detector;
  try {
    detector = await Detector.load(values.model ?? DEFAULT_MODEL, {
      device: values.device ?? 'cpu',
      intraOpThreads: numberOption('threads', values.threads) ?? 0,
      limits: {
        ...(values['max-pixels'] !== undefined && { maxPixels: numberOption('max-pixels', values['max-pixels']) }),
        ...(values['max-bytes'] !== undefined && { maxBytes: numberOption('max-bytes', values['max-bytes']) }),
      },
      onWarning: (m) => io.err(`warning: ${m}`),
    });
  } catch (err) {
    const e = describeError(err, verbose);
    io.err(`error: ${e.code}: ${e.message}`);
    if (e.stack) io.err(e.stack);
    return 1;
  }
  let failed = 0;
  try {
    for (const path of positionals) {
      try {
        const result = await detector.detect(path, options);
        if (values.json) io.out(JSON.stringify({ path, ...result }));
        else formatResult(path, result).forEach((l) => io.out(l));
      } catch (err) {
        failed++;
        const e = describeError(err, verbose);
        if (values.json) io.out(JSON.stringify({ path, error: { code: e.code, message: e.message } }));
        io.err(`error: ${path}: ${e.code}: ${e.message}`);
        if (e.stack) io.err(e.stack);
        // A bad option fails every image the same way: stop at the first.
        if (err instanceof DetectError && (err.code === 'INVALID_OPTION' || err.code === 'UNSUPPORTED_PIPELINE')) {
          failed += positionals.length - positionals.indexOf(path) - 1;
          break;
        }
      }
    }
  } finally {
    await detector.close();
  }
  return failed > 0 ? 1 : 0;
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
      default:
        throw new UsageError(`unknown command ${JSON.stringify(command)}; commands: detect`);
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
