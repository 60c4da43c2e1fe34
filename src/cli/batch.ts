/**
 * `rcnn-serve batch`: thousands of images through one or more servers, or
 * through the pipeline in this process, into a JSON-lines file that a killed
 * run resumes without losing or repeating an image.
 */

import { InputError } from '../batch/inputs.js';
import { JournalError } from '../batch/journal.js';
import { createProgress } from '../batch/progress.js';
import { DEFAULT_RETRY } from '../batch/retry.js';
import { runBatch } from '../batch/run.js';
import { parseShard } from '../batch/shard.js';
import { HttpTarget, LocalTarget, servedScoreThreshold, type RunOptions, type Target } from '../batch/targets.js';
import { DEFAULT_MODEL, resolveModelDir } from '../model/package.js';
import { parseDevice } from '../runtime/device.js';
import { DEFAULT_DECODE_LIMITS } from '../image/decode.js';
import { checkOptions, DISPLAY_SCORE_THRESHOLD } from '../options.js';
import { defaultThreads, defaultWorkers } from '../workers/defaults.js';
import { asUsageError, flagList, optionFlags, optionsFromFlags, parseCommand, readGroundTruthFlag, UsageError } from './flags.js';
import { onStopRequest } from './stop-signals.js';

export const BATCH_USAGE = `batch: rcnn-serve batch INPUT... (--url URL [--url URL ...] | --local) --out FILE.jsonl [options]
  INPUT                    a folder (walked recursively for .jpg .jpeg .png .webp), a glob ('photos/**/*.jpg', quoted),
                           an image, or a manifest: one path per line, or JSON lines {"path": ...} (relative to its folder)
  --url URL                an rcnn-serve server; repeat for several (each image goes to the one with the fewest requests
                           in flight)
  --local                  run the pipeline in this process instead (--workers, --threads, --device as the server's
                           WORKERS, ORT_THREADS, DEVICE)
  --out FILE               JSON lines, one per image, appended as images finish:
                           {"path","sha256","attempts","result":{...detect's JSON...}} or
                           {"path","sha256","attempts","error":{"code","message","status"}}
  --resume                 continue FILE: images already in it are not sent again (without it, FILE must not exist)
${flagList('cliDetect')}
                           as for detect, checked before the run (default: the server's default model and its newest
                           pipeline; --score-threshold 0.5, or with --coco the model's own, for AP)
  --concurrency N          images in flight (default: 4 per --url; --local: twice the worker count)
  --timeout MS             per request (default 120000); a timeout is retried
  --retries N              tries after the first on connection errors, timeouts, 429, 502, 503 and 504, with exponential
                           backoff and jitter, honouring Retry-After (default ${DEFAULT_RETRY.retries}); never on other 4xx
  --shard i/n              only the images of shard i of n (by a hash of the path as listed): n machines, same inputs,
                           disjoint outputs whose union is the whole
  --coco FILE              also write the output's detections as COCO results
  --gt FILE                with --coco: COCO ground truth giving image ids (by file name) and category ids
  --allow-failed           exit 0 when the run finishes even if some images failed for good (for Jobs that must not be
                           rerun for bad images; the summary and the output still say which)
  --api-key KEY            the server's API key (default: the RCNN_SERVE_API_KEY variable)
  Progress goes to stderr (a bar on a terminal, a line every 10 s otherwise), then a summary.
  Exit status: 0 every image is in FILE with a result; 3 the run finished and some images failed for good (their lines
  carry the error); 1 the run did not finish (stopped by a signal, or an error: run again with --resume); 2 bad usage.`;

const FLAGS = {
  url: { type: 'string', multiple: true },
  local: { type: 'boolean' },
  out: { type: 'string' },
  resume: { type: 'boolean' },
  ...optionFlags('cliDetect'),
  concurrency: { type: 'string' },
  timeout: { type: 'string' },
  retries: { type: 'string' },
  shard: { type: 'string' },
  coco: { type: 'string' },
  gt: { type: 'string' },
  'api-key': { type: 'string' },
  'allow-failed': { type: 'boolean' },
  workers: { type: 'string' },
  threads: { type: 'string' },
  device: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** The run finished; some images failed for good (bad images): their lines say why. */
export const EXIT_SOME_FAILED = 3;

export interface BatchIo {
  out: (line: string) => void;
  err: (line: string) => void;
  /** Draw a progress bar (stderr is a terminal). */
  tty: boolean;
}

export async function batchCommand(argv: string[], io: BatchIo): Promise<number> {
  const { values, positionals } = parseCommand({ args: argv, options: FLAGS, allowPositionals: true, strict: true });
  const usageError = (message: string) => new UsageError(message);
  if (values.help) {
    io.out(BATCH_USAGE);
    return 0;
  }
  const number = (flag: keyof typeof FLAGS, min: number, integer = true): number | undefined => {
    const raw = values[flag] as string | undefined;
    if (raw === undefined) return undefined;
    const v = Number(raw);
    if (raw.trim() === '' || !Number.isFinite(v) || v < min || (integer && !Number.isInteger(v))) {
      throw usageError(`--${flag} needs ${integer ? 'an integer' : 'a number'} >= ${min}, got ${JSON.stringify(raw)}`);
    }
    return v;
  };
  if (positionals.length === 0) throw usageError('batch needs at least one INPUT (a folder, a glob, an image or a manifest)');
  if (!values.out) throw usageError('batch needs --out FILE.jsonl');
  const urls = values.url ?? [];
  if ((urls.length > 0) === (values.local ?? false)) throw usageError('batch needs --url URL (one or more) or --local, not both');
  if (values.gt && !values.coco) throw usageError('--gt goes with --coco');
  for (const u of urls) if (!/^https?:\/\/[^/]/.test(u)) throw usageError(`--url ${JSON.stringify(u)} is not an http(s) URL`);
  // Checked here, not per image: a bad option would fail every image of the run alike.
  const options: RunOptions = optionsFromFlags('cliDetect', values);
  asUsageError(() => checkOptions('cliDetect', options, options.pipeline ? { pipeline: options.pipeline } : {}));
  // Read now: a bad ground truth would otherwise fail the run at its end, when the COCO file is written.
  const gt = values.gt === undefined ? undefined : await readGroundTruthFlag('gt', values.gt);
  // Shown detections: the display threshold (as the server's own default). With --coco, the model's (--local: the library's default).
  if (!values.coco) options.scoreThreshold ??= DISPLAY_SCORE_THRESHOLD;
  let shard;
  try {
    shard = values.shard === undefined ? undefined : parseShard(values.shard);
  } catch (err) {
    throw usageError((err as Error).message);
  }

  let targets: Target[];
  let concurrency: number;
  if (values.local) {
    const workers = number('workers', 1) ?? defaultWorkers();
    const { model, ...detectOptions } = options;
    const settings = { device: parseDevice(values.device ?? 'cpu'), intraOpThreads: number('threads', 1) ?? defaultThreads(workers), limits: DEFAULT_DECODE_LIMITS };
    targets = [new LocalTarget(await resolveModelDir(model ?? DEFAULT_MODEL), detectOptions, settings, workers)];
    // Twice the workers: the next image is read while a worker runs.
    concurrency = number('concurrency', 1) ?? 2 * workers;
  } else {
    const timeoutMs = number('timeout', 1) ?? 120_000;
    const apiKey = values['api-key'] ?? process.env.RCNN_SERVE_API_KEY;
    // COCO results are for AP: the model's own threshold, which a request must name (its default is the display one).
    if (values.coco && options.scoreThreshold === undefined) {
      try {
        options.scoreThreshold = await servedScoreThreshold(urls, options, { timeoutMs: Math.min(timeoutMs, 10_000), apiKey, tries: 3 });
      } catch (err) {
        throw usageError((err as Error).message);
      }
    }
    targets = urls.map((u) => new HttpTarget(u.replace(/\/+$/, ''), options, { timeoutMs, apiKey }));
    concurrency = number('concurrency', 1) ?? 4 * urls.length;
  }

  const stop = new AbortController();
  const stopWatching = onStopRequest((why) => {
    io.err(`batch: stopping after the images in flight (${why}; signal again to quit at once)`);
    stop.abort();
  });
  try {
    const summary = await runBatch({
      inputs: positionals,
      out: values.out,
      resume: values.resume ?? false,
      shard,
      concurrency,
      retry: { ...DEFAULT_RETRY, retries: number('retries', 0) ?? DEFAULT_RETRY.retries },
      targets,
      coco: values.coco ? { out: values.coco, gt } : undefined,
      progress: createProgress({ tty: io.tty, log: io.err }),
      signal: stop.signal,
      log: io.err,
    });
    if (summary.interrupted) io.err(`batch: stopped with ${summary.total - summary.skipped - summary.done - summary.failed} images left; run again with --resume`);
    if (summary.failedInOutput > 0) io.err(`batch: ${summary.failedInOutput} images failed for good (their lines in ${values.out} carry the error)`);
    return summary.interrupted ? 1 : summary.failedInOutput > 0 && !values['allow-failed'] ? EXIT_SOME_FAILED : 0;
  } catch (err) {
    if (err instanceof InputError || err instanceof JournalError) throw usageError(err.message);
    throw err;
  } finally {
    stopWatching();
    await Promise.all(targets.map((t) => t.close()));
  }
}
