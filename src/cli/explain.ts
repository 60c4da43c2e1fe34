/** `rcnn-serve explain IMAGE`: occlusion-sensitivity maps of detections (src/explain.ts). */

import { writeFile } from 'node:fs/promises';
import { Detector, type ExplainResult } from '../detector.js';
import { drawOcclusionMap } from '../image/heatmap.js';
import { DEFAULT_MODEL } from '../model/package.js';
import { checkOptions } from '../options.js';
import { EXECUTION_PROVIDERS } from '../runtime/device.js';
import { asUsageError, numberFlag, optionFlags, optionsFromFlags, optionsHelp, parseCommand, UsageError, type CliIo } from './flags.js';
import { describeError, LIMIT_FLAGS, limitsFrom } from './images.js';
import { readImageFile } from '../image/decode.js';
import { onStopRequest } from './stop-signals.js';

export const EXPLAIN_USAGE = `explain options (one IMAGE; Ctrl-C stops it between batches):
${optionsHelp('cliExplain')}
  --out FILE               write the first explained detection's heat map over the image (PNG)
  --device D               ${Object.keys(EXECUTION_PROVIDERS).join(' | ')} (default: cpu)
  --threads N              ONNX Runtime intra-op threads (default: all cores)
  --max-pixels N           refuse images over N pixels (default: 40000000)
  --max-bytes N            refuse inputs over N bytes (default: 20971520)
  --json                   the result as one JSON object: {"grid","maps":[{"target","baseline","scores","drops","peak"}],"cost",...}
  --verbose                stack traces on errors`;

const FLAGS = {
  ...optionFlags('cliExplain'),
  out: { type: 'string' },
  device: { type: 'string' },
  threads: { type: 'string' },
  ...LIMIT_FLAGS,
} as const;

function formatResult(path: string, r: ExplainResult): string[] {
  const lines = [
    `${path}  ${r.image.width}x${r.image.height}  ${r.model} ${r.pipeline}  patch ${r.grid.patch} stride ${r.grid.stride} (${r.grid.columns}x${r.grid.rows})  ` +
      `${r.cost.passes} passes in ${r.cost.batches} batches, ${r.cost.ms} ms`,
  ];
  if (r.maps.length === 0) lines.push('  no detection to explain (none above the score threshold)');
  for (const m of r.maps) {
    const t = m.target;
    const from = t.from === 'caller' ? 'your box' : `detection ${t.from}`;
    lines.push(`  ${from}: ${t.label} [${t.box.map((v) => v.toFixed(1)).join(', ')}]  score ${m.baseline.toFixed(3)} at the input size`);
    lines.push(`    largest drop ${m.peak.drop.toFixed(3)} with the patch at [${m.peak.box.join(', ')}] greyed`);
  }
  return lines;
}

export async function explainCommand(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommand({ args: argv, options: FLAGS, allowPositionals: true, strict: true });
  if (values.help) {
    io.out(EXPLAIN_USAGE);
    return 0;
  }
  if (positionals.length !== 1) throw new UsageError(`explain takes one IMAGE; got ${positionals.length}`);
  const { model, ...options } = optionsFromFlags('cliExplain', values);
  asUsageError(() => checkOptions('cliExplain', options, options.pipeline ? { pipeline: options.pipeline } : {}));
  const path = positionals[0]!;
  const verbose = values.verbose ?? false;
  const abort = new AbortController();
  const stopWatching = onStopRequest((why) => {
    io.err(`stopping (${why}) after the current batch`);
    abort.abort(new Error(`stopped by ${why}`));
  });
  let detector: Detector | undefined;
  try {
    detector = await Detector.load(model ?? DEFAULT_MODEL, {
      device: values.device ?? 'cpu',
      intraOpThreads: numberFlag('threads', values.threads) ?? 0,
      limits: limitsFrom(values),
      onWarning: (m) => io.err(`warning: ${m}`),
    });
    const result = await detector.explain(path, { ...options, signal: abort.signal });
    if (values.out) {
      const map = result.maps[0];
      if (!map) throw new UsageError('--out draws the first explained detection, and there is none: lower --score-threshold, or give --box and --label');
      await writeFile(values.out, await drawOcclusionMap(await readImageFile(path), { ...result.grid }, map.drops, { ...map.target, score: map.baseline }));
    }
    if (values.json) io.out(JSON.stringify({ path, ...result }));
    else for (const line of formatResult(path, result)) io.out(line);
    return 0;
  } catch (err) {
    if (err instanceof UsageError) throw err;
    const e = describeError(err, verbose);
    io.err(`error: ${e.code}: ${e.message}`);
    if (e.stack) io.err(e.stack);
    return 1;
  } finally {
    stopWatching();
    await detector?.close();
  }
}
