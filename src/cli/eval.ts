/**
 * `rcnn-serve eval`: COCO box AP of a results file, and recall / MABO of
 * proposals, against a COCO ground truth.
 */

import { dirname, resolve } from 'node:path';
import type { ParseArgsConfig } from 'node:util';
import type { CocoAnnotation, CocoResult } from '../dataset/coco.js';
import { evaluateCoco, type CocoMetrics } from '../eval/coco-eval.js';
import { proposalQuality, type ImageProposals } from '../eval/proposal-recall.js';
import { parseCommand, readFlagFile, readGroundTruthFlag, readJsonFlag, UsageError } from './flags.js';

export const EVAL_USAGE = `eval options:
  --gt FILE                COCO ground truth (annotations.json)
  --results FILE           COCO results (detect --coco-results): prints AP@[.5:.95], AP50, AP75, AP small/medium/large,
                           AR 1/10/100 and per-class AP, as pycocotools computes them
  --proposals FILE         proposals (rcnn-serve proposals --json lines): prints recall at IoU 0.5 / 0.7, ABO and MABO
  --max-proposals N        score only the first N proposals of each image
  --json                   one JSON object instead of the table`;

const OPTIONS = {
  gt: { type: 'string' },
  results: { type: 'string' },
  proposals: { type: 'string' },
  'max-proposals': { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies ParseArgsConfig['options'];

const pct = (v: number) => (v < 0 ? '   -' : (100 * v).toFixed(1).padStart(5));

function metricsTable(m: CocoMetrics): string[] {
  const lines = [
    `AP@[.5:.95] ${pct(m.ap)}   AP50 ${pct(m.ap50)}   AP75 ${pct(m.ap75)}`,
    `AP small ${pct(m.apSmall)}   medium ${pct(m.apMedium)}   large ${pct(m.apLarge)}`,
    `AR 1 ${pct(m.ar1)}   10 ${pct(m.ar10)}   100 ${pct(m.ar100)}   (small ${pct(m.arSmall)}, medium ${pct(m.arMedium)}, large ${pct(m.arLarge)})`,
    'per class:       AP  AP50',
  ];
  const width = Math.max(...Object.keys(m.perClass).map((n) => n.length));
  for (const [name, v] of Object.entries(m.perClass)) lines.push(`  ${name.padEnd(width)}  ${pct(v.ap)} ${pct(v.ap50)}`);
  return lines;
}

/** @returns exit status; a missing, unreadable or malformed input file is a UsageError naming its flag. */
export async function evalCommand(argv: string[], out: (line: string) => void): Promise<number> {
  const { values } = parseCommand({ args: argv, options: OPTIONS, strict: true });
  if (values.help) {
    out(EVAL_USAGE);
    return 0;
  }
  if (!values.gt) throw new UsageError('eval needs --gt FILE');
  if (!values.results && !values.proposals) throw new UsageError('eval needs --results FILE and/or --proposals FILE');
  const maxProposals = values['max-proposals'] === undefined ? Infinity : Number(values['max-proposals']);
  if (!(maxProposals >= 1)) throw new UsageError(`--max-proposals needs a positive number, got ${JSON.stringify(values['max-proposals'])}`);
  const truth = (await readGroundTruthFlag('gt', values.gt)).dataset;
  const report: Record<string, unknown> = {};
  if (values.results) {
    const results = (await readJsonFlag('results', values.results)) as CocoResult[];
    if (!Array.isArray(results)) throw new UsageError(`--results ${values.results} is not a COCO results file (a JSON array)`);
    report.detection = evaluateCoco(truth, results);
  }
  if (values.proposals) {
    const root = dirname(resolve(values.gt));
    const byFile = new Map<string, number[][]>();
    for (const [i, line] of (await readFlagFile('proposals', values.proposals)).split('\n').entries()) {
      if (!line.trim()) continue;
      let r: { path: string; proposals?: number[][] };
      try {
        r = JSON.parse(line);
      } catch {
        throw new UsageError(`--proposals ${values.proposals}: line ${i + 1} is not JSON (expected the lines of 'rcnn-serve proposals --json')`);
      }
      if (r.proposals) byFile.set(resolve(r.path), r.proposals);
    }
    const annotations = new Map<number, CocoAnnotation[]>();
    for (const a of truth.annotations) {
      if (a.iscrowd === 1) continue;
      const list = annotations.get(a.image_id);
      if (list) list.push(a);
      else annotations.set(a.image_id, [a]);
    }
    const images: ImageProposals[] = [];
    for (const im of truth.images) {
      const proposals = byFile.get(resolve(root, im.file_name));
      if (!proposals) throw new UsageError(`--proposals ${values.proposals} has no proposals for ${im.file_name}`);
      const anns = annotations.get(im.id) ?? [];
      images.push({ truth: { boxes: anns.map((a) => [a.bbox[0], a.bbox[1], a.bbox[0] + a.bbox[2], a.bbox[1] + a.bbox[3]]), classes: anns.map((a) => a.category_id) }, proposals });
    }
    report.proposals = proposalQuality(images, maxProposals);
  }
  if (values.json) {
    out(JSON.stringify(report));
    return 0;
  }
  if (report.detection) metricsTable(report.detection as CocoMetrics).forEach(out);
  if (report.proposals) {
    const q = report.proposals as ReturnType<typeof proposalQuality>;
    out(`proposals: ${q.proposalsPerImage.toFixed(0)} per image, ${q.objects} objects: recall@0.5 ${pct(q.recall50)}  recall@0.7 ${pct(q.recall70)}  ABO ${q.abo.toFixed(3)}  MABO ${q.mabo.toFixed(3)}`);
  }
  return 0;
}
