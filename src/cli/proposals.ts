/** `rcnn-serve proposals IMAGE...`: selective search's regions, or a Faster R-CNN model's RPN's, for each image. */

import { Detector } from '../detector.js';
import { DEFAULT_MODEL } from '../model/package.js';
import { checkOptions, type OptionsOf } from '../options.js';
import { RegionProposer } from '../proposals.js';
import { defaultWorkers } from '../workers/defaults.js';
import { asUsageError, numberFlag, optionFlags, optionsFromFlags, optionsHelp, parseCommand, UsageError, type CliIo } from './flags.js';
import { forEachImage, LIMIT_FLAGS, limitsFrom } from './images.js';

export const PROPOSALS_USAGE = `proposals options:
${optionsHelp('proposals')}
  --max N                  the same as --max-proposals
  --workers N              worker threads for the strategies (default: ${defaultWorkers()}); output does not depend on it
  --json                   one JSON object per line:
                           {"path","image":{"width","height"},"method","mode","proposals":[[x1,y1,x2,y2],...],"timings":{...,"total"}}
                           (method rpn: "model" and "scores" instead of "mode", by decreasing objectness)
  --max-pixels N           refuse images over N pixels (default: 4000000: under 1 GB peak per worker)
  --max-bytes, --verbose   as for detect`;

const FLAGS = { ...optionFlags('proposals'), max: { type: 'string' }, workers: { type: 'string' }, ...LIMIT_FLAGS } as const;

interface Run {
  paths: string[];
  options: OptionsOf<'proposals'>;
  values: { workers?: string; json?: boolean; verbose?: boolean; 'max-pixels'?: string; 'max-bytes'?: string };
  io: CliIo;
}

export async function proposalsCommand(argv: string[], io: CliIo, usage: string): Promise<number> {
  const { values, positionals } = parseCommand({ args: argv, options: FLAGS, allowPositionals: true, strict: true });
  if (values.help) {
    io.out(usage);
    return 0;
  }
  if (positionals.length === 0) throw new UsageError('proposals needs at least one IMAGE');
  const table = optionsFromFlags('proposals', values);
  if (values.max !== undefined && table.maxProposals !== undefined) throw new UsageError('--max and --max-proposals are the same option; give one');
  const options = { ...table, ...(values.max !== undefined && { maxProposals: numberFlag('max', values.max) }) };
  const { method = 'selective-search' } = options;
  // A bad option, or one the method does not take, would fail every image alike: a usage error (exit 2).
  asUsageError(() => checkOptions('proposals', options, { method }));
  const run = { paths: positionals, options, values, io };
  return method === 'rpn' ? rpnProposals(run) : selectiveSearch(run);
}

async function selectiveSearch({ paths, options, values, io }: Run): Promise<number> {
  const { method: _method, model: _model, ...search } = options;
  const proposer = new RegionProposer({ workers: numberFlag('workers', values.workers) ?? defaultWorkers(), limits: limitsFrom(values) });
  try {
    return await forEachImage(paths, io, values.json === true, values.verbose === true, async (path) => {
      const r = await proposer.propose(path, search);
      return {
        json: { path, ...r },
        text: [`${path}  ${r.image.width}x${r.image.height}  selective-search ${r.mode}  ${r.proposals.length} proposal(s)  ${r.timings.total} ms`],
      };
    });
  } finally {
    await proposer.close();
  }
}

async function rpnProposals({ paths, options, values, io }: Run): Promise<number> {
  const detector = await Detector.load(options.model ?? DEFAULT_MODEL, { limits: limitsFrom(values), onWarning: (m) => io.err(`warning: ${m}`) });
  try {
    return await forEachImage(paths, io, values.json === true, values.verbose === true, async (path) => {
      const r = await detector.rpnProposals(path, { maxProposals: options.maxProposals });
      return { json: { path, ...r }, text: [`${path}  ${r.image.width}x${r.image.height}  ${r.model} rpn  ${r.proposals.length} proposal(s)  ${r.timings.total} ms`] };
    });
  } finally {
    await detector.close();
  }
}
