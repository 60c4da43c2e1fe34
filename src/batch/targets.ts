/**
 * Where a batch run's images go: rcnn-serve servers over HTTP, or the
 * pipeline in this process (the same worker pool the server runs). A target
 * answers each image with a result or an error, and says whether the error is
 * worth another try.
 */

import { extname } from 'node:path';
import type { DetectionResult, DetectOptions } from '../detector.js';
import { DetectError } from '../errors.js';
import type { OptionsOf } from '../options.js';
import { InferencePool } from '../workers/inference-pool.js';
import type { WorkerSettings } from '../workers/inference-worker.js';
import type { BatchError } from './journal.js';
import { parseRetryAfter, RETRYABLE_STATUS } from './retry.js';

export type Outcome = { result: DetectionResult } | { error: BatchError; retryable: boolean; retryAfterMs?: number };

export interface Target {
  /** For log lines: the URL, or "local". */
  readonly name: string;
  /** Requests sent and not yet answered. */
  outstanding: number;
  /** Not chosen before this time (epoch ms) while another target is up: it just failed to connect. */
  downUntil: number;
  detect(path: string, bytes: Uint8Array): Promise<Outcome>;
  close(): Promise<void>;
}

/** The detect options a run passes: the query string's and the detector's, one name each (src/options.ts). */
export type RunOptions = OptionsOf<'detect'>;

const CONTENT_TYPES: Record<string, string> = { '.jpg': 'image/jpeg', '.jpeg': 'image/jpeg', '.png': 'image/png', '.webp': 'image/webp' };

/** Node's fetch fails with a TypeError whose cause carries the socket error's code. */
function networkError(err: unknown, timeoutMs: number): BatchError {
  const e = err as Error & { cause?: { code?: string; message?: string } };
  if (e.name === 'TimeoutError' || e.name === 'AbortError') return { code: 'TIMEOUT', message: `no answer within ${timeoutMs} ms` };
  const cause = e.cause?.code ?? e.cause?.message ?? e.message;
  return { code: 'CONNECTION_ERROR', message: `${e.message} (${cause})` };
}

export class HttpTarget implements Target {
  outstanding = 0;
  downUntil = 0;
  private readonly query: string;

  constructor(
    readonly name: string,
    options: RunOptions,
    private readonly settings: { timeoutMs: number; apiKey?: string },
  ) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(options)) if (v !== undefined) q.set(k, String(v));
    const text = q.toString();
    this.query = text ? `?${text}` : '';
  }

  async detect(path: string, bytes: Uint8Array): Promise<Outcome> {
    const headers: Record<string, string> = { 'content-type': CONTENT_TYPES[extname(path).toLowerCase()] ?? 'application/octet-stream' };
    if (this.settings.apiKey) headers['x-api-key'] = this.settings.apiKey;
    let res: Response;
    try {
      res = await fetch(`${this.name}/v1/detect${this.query}`, { method: 'POST', headers, body: bytes as Uint8Array<ArrayBuffer>, signal: AbortSignal.timeout(this.settings.timeoutMs) });
    } catch (err) {
      return { error: networkError(err, this.settings.timeoutMs), retryable: true };
    }
    let body: unknown;
    try {
      body = await res.json();
    } catch (err) {
      if (res.ok) return { error: networkError(err, this.settings.timeoutMs), retryable: true };
      body = undefined;
    }
    if (res.ok) return { result: body as DetectionResult };
    const e = body as { code?: unknown; message?: unknown } | undefined;
    const error: BatchError = {
      code: typeof e?.code === 'string' ? e.code : `HTTP_${res.status}`,
      message: typeof e?.message === 'string' ? e.message : res.statusText,
      status: res.status,
    };
    return { error, retryable: RETRYABLE_STATUS.has(res.status), retryAfterMs: parseRetryAfter(res.headers.get('retry-after')) };
  }

  async close(): Promise<void> {}
}

/** What GET /v1/models says of a model: the fields a batch run reads. */
interface ServedModel {
  name: string;
  pipelines: string[];
  postprocess: Record<string, { scoreThreshold: number }>;
}

/**
 * The evaluation score threshold of the model and pipeline a run's options
 * name (their defaults: the server's first model, its newest pipeline), as
 * the first server that answers GET /v1/models gives it: the model's own
 * postprocess.scoreThreshold, which a request would otherwise replace with
 * the display threshold.
 * @throws Error saying which servers did not answer, or that the model or pipeline is not served.
 */
export async function servedScoreThreshold(urls: readonly string[], options: RunOptions, settings: { timeoutMs: number; apiKey?: string; tries: number }): Promise<number> {
  const headers: Record<string, string> = settings.apiKey ? { 'x-api-key': settings.apiKey } : {};
  const failures: string[] = [];
  for (let attempt = 0; attempt < settings.tries; attempt++) {
    if (attempt > 0) await new Promise((r) => setTimeout(r, 1000));
    for (const url of urls) {
      let models: ServedModel[];
      try {
        const res = await fetch(`${url}/v1/models`, { headers, signal: AbortSignal.timeout(settings.timeoutMs) });
        if (!res.ok) throw new Error(`HTTP ${res.status}`);
        models = ((await res.json()) as { models: ServedModel[] }).models;
      } catch (err) {
        failures.push(`${url}: ${err instanceof TypeError ? networkError(err, settings.timeoutMs).message : (err as Error).message}`);
        continue;
      }
      const model = options.model === undefined ? models[0] : models.find((m) => m.name === options.model);
      if (!model) throw new Error(`${url} serves no model ${JSON.stringify(options.model)}; it serves: ${models.map((m) => m.name).join(', ')}`);
      const pipeline = options.pipeline ?? model.pipelines.at(-1)!;
      const threshold = model.postprocess?.[pipeline]?.scoreThreshold;
      if (threshold === undefined) throw new Error(`${url}: model ${model.name} has no ${pipeline} pipeline; it serves: ${model.pipelines.join(', ')}`);
      return threshold;
    }
  }
  throw new Error(`no server answered GET /v1/models for the model's evaluation score threshold (${failures.slice(-urls.length).join('; ')}); check --url, or give --score-threshold`);
}

/** The pipeline in this process, in a worker pool as the server runs it. */
export class LocalTarget implements Target {
  readonly name = 'local';
  outstanding = 0;
  downUntil = 0;
  private readonly pool: InferencePool;

  constructor(
    private readonly modelDir: string,
    private readonly options: DetectOptions,
    private readonly settings: WorkerSettings,
    workers: number,
  ) {
    // The run's concurrency bounds what waits; the queue never refuses.
    this.pool = new InferencePool({ workers, maxQueue: Number.MAX_SAFE_INTEGER });
  }

  async detect(_path: string, bytes: Uint8Array): Promise<Outcome> {
    try {
      return { result: await this.pool.detect({ modelDir: this.modelDir, bytes, options: this.options, settings: this.settings }) };
    } catch (err) {
      if (err instanceof DetectError) return { error: { code: err.code, message: err.message }, retryable: false };
      return { error: { code: 'INTERNAL_ERROR', message: (err as Error).message }, retryable: false };
    }
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}

/**
 * Least outstanding requests: the target with the fewest requests in flight,
 * among those not marked down (all of them when every one is); ties go round
 * robin, so equal servers share the load evenly.
 */
export class Balancer {
  private next = 0;

  constructor(readonly targets: readonly Target[]) {
    if (targets.length === 0) throw new RangeError('a batch run needs at least one target');
  }

  pick(now = Date.now()): Target {
    const up = this.targets.filter((t) => t.downUntil <= now);
    const pool = up.length ? up : this.targets;
    let best: Target | undefined;
    for (let k = 0; k < pool.length; k++) {
      const t = pool[(this.next + k) % pool.length]!;
      if (!best || t.outstanding < best.outstanding) best = t;
    }
    this.next = (this.next + 1) % pool.length;
    return best!;
  }
}
