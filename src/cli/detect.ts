/** `rcnn-serve detect IMAGE...`: detections for each image, in input order. */

import { writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { CocoResult } from '../dataset/coco.js';
import { Detector, type DetectionResult } from '../detector.js';
import type { Provenance } from '../core/provenance.js';
import { DetectError } from '../errors.js';
import { CocoIds } from '../eval/coco-results.js';
import { DEFAULT_MODEL, defaultModelDomain } from '../model/package.js';
import { checkOptions, DISPLAY_SCORE_THRESHOLD } from '../options.js';
import { EXECUTION_PROVIDERS } from '../runtime/device.js';
import { asUsageError, numberFlag, optionFlags, optionsFromFlags, optionsHelp, parseCommand, readFlagFile, readGroundTruthFlag, UsageError, type CliIo } from './flags.js';
import { describeError, forEachImage, LIMIT_FLAGS, limitsFrom } from './images.js';

export const DETECT_USAGE = `detect options:
${optionsHelp('cliDetect')}
  --proposals FILE         rcnn / fast-rcnn: regions to score instead of selective search's: a JSON array of
                           [x1,y1,x2,y2] for every image, or the JSON lines of 'rcnn-serve proposals --json' (by path)
  --proposals-max-pixels N rcnn / fast-rcnn: run selective search on images of up to N pixels (default: 4000000;
                           its time and memory grow with the pixels); larger ones need --proposals
  --coco-results FILE      also write the detections as COCO results (a JSON array)
  --gt FILE                with --coco-results: COCO ground truth giving image ids (by file name) and category ids
  --device D               ${Object.keys(EXECUTION_PROVIDERS).join(' | ')} (default: cpu)
  --threads N              ONNX Runtime intra-op threads (default: all cores)
  --max-pixels N           refuse images over N pixels (default: 40000000)
  --max-bytes N            refuse inputs over N bytes (default: 20971520)
  --json                   one JSON object per line:
                           {"path","model","pipeline","image":{"width","height"},
                            "detections":[{"box":[x1,y1,x2,y2],"label","classId","score"[,"provenance"]}],"timings":{...,"total"}}
                           or {"path","error":{"code","message"}} for an image that failed
  --verbose                stack traces on errors`;

const FLAGS = {
  ...optionFlags('cliDetect'),
  proposals: { type: 'string' },
  'proposals-max-pixels': { type: 'string' },
  'coco-results': { type: 'string' },
  gt: { type: 'string' },
  device: { type: 'string' },
  threads: { type: 'string' },
  ...LIMIT_FLAGS,
} as const;

function formatResult(path: string, r: DetectionResult): string[] {
  const lines = [`${path}  ${r.image.width}x${r.image.height}  ${r.model} ${r.pipeline}  ${r.detections.length} detection(s)  ${r.timings.total} ms`];
  const width = Math.max(5, ...r.detections.map((d) => d.label.length));
  for (const d of r.detections) {
    lines.push(`  ${d.label.padEnd(width)}  ${d.score.toFixed(3)}  [${d.box.map((v) => v.toFixed(1)).join(', ')}]`);
    if (d.provenance) lines.push(`  ${' '.repeat(width)}  from ${provenanceText(d.provenance)}`);
  }
  return lines;
}

/** A detection's provenance in one line of words. */
function provenanceText(p: Provenance): string {
  const s = p.source;
  const by =
    s.method === 'selective-search'
      ? `selective search (${s.colourSpace}, k ${s.k}, ${s.similarities}, ${s.level === 0 ? 'an initial segment' : `merge ${s.level} of ${s.merges}`})`
      : s.method === 'caller'
        ? `your proposal ${s.index}`
        : `the RPN (objectness ${s.objectness.toFixed(3)}; anchor level ${s.anchor.level}, size ${s.anchor.size}, ratio ${s.anchor.aspectRatio}, cell ${s.anchor.cell.join(',')})`;
  const scale = p.scale ? `, at ${p.scale.minSize}-${p.scale.maxSize}${p.scale.flip ? ' mirrored' : ''}` : '';
  return `region [${p.region.map((v) => v.toFixed(1)).join(', ')}], rank ${p.rank}, proposed by ${by}${scale}`;
}

export async function detectCommand(argv: string[], io: CliIo, usage: string): Promise<number> {
  const { values, positionals } = parseCommand({ args: argv, options: FLAGS, allowPositionals: true, strict: true });
  if (values.help) {
    io.out(usage);
    return 0;
  }
  if (positionals.length === 0) throw new UsageError('detect needs at least one IMAGE');
  const { model, ...options } = optionsFromFlags('cliDetect', values);
  // A bad option would fail every image alike: a usage error (exit 2) before the model loads.
  asUsageError(() => checkOptions('cliDetect', options, options.pipeline ? { pipeline: options.pipeline } : {}));
  const cocoPath = values['coco-results'];
  // Shown detections: the display threshold; COCO results, for AP: the model's own (the library's default).
  if (!cocoPath) options.scoreThreshold ??= DISPLAY_SCORE_THRESHOLD;
  // The input files too, before the model loads.
  const proposalsFile = values.proposals;
  const regions = proposalsFile === undefined ? undefined : await readProposalsFile(proposalsFile);
  const gt = values.gt;
  if (gt && !cocoPath) throw new UsageError('--gt goes with --coco-results');
  const ids = cocoPath ? new CocoIds(gt ? await readGroundTruthFlag('gt', gt) : undefined) : undefined;
  const verbose = values.verbose ?? false;
  let detector: Detector;
  try {
    detector = await Detector.load(model ?? DEFAULT_MODEL, {
      device: values.device ?? 'cpu',
      intraOpThreads: numberFlag('threads', values.threads) ?? 0,
      limits: limitsFrom(values),
      proposalMaxPixels: numberFlag('proposals-max-pixels', values['proposals-max-pixels']),
      onWarning: (m) => io.err(`warning: ${m}`),
    });
  } catch (err) {
    const e = describeError(err, verbose);
    io.err(`error: ${e.code}: ${e.message}`);
    if (e.stack) io.err(e.stack);
    return 1;
  }
  // The shipped default knows synthetic shapes only: on a photo it finds shapes, confidently. Say so, once.
  if (!values.json && detector.name === DEFAULT_MODEL) io.err(`note: ${defaultModelDomain(detector.classes.slice(1), 'pass --model')}`);
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
  const trimmed = (await readFlagFile('proposals', file)).trim();
  if (trimmed.startsWith('[')) {
    let boxes: number[][];
    try {
      boxes = JSON.parse(trimmed);
    } catch (err) {
      throw new UsageError(`--proposals ${file} is not JSON (${(err as Error).message})`);
    }
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
