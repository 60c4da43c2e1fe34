/**
 * What the application is built from (AppOptions) and what its routes get
 * (AppContext): one module that app.ts and every route import, so no route
 * imports the app that registers it.
 */

import type { FastifyRequest } from 'fastify';
import type { Registry } from '../model/registry.js';
import type { WorkerSettings } from '../workers/inference-worker.js';
import type { InferencePool } from '../workers/inference-pool.js';
import type { ErrorBody, HttpErrorCode } from './error-catalog.js';
import type { Metrics } from './metrics.js';

export interface AppOptions {
  registry: Registry;
  pool: InferencePool;
  settings: WorkerSettings;
  /** Largest accepted request body, in bytes: a raw image, or all the parts of a multipart body together. */
  maxBodyBytes: number;
  /**
   * How long a client may take to send a request, headers and body, in ms
   * (default RECEIVE_TIMEOUT_MS); past it, 408 REQUEST_TIMEOUT and the
   * connection is closed. Checked about every second.
   */
  receiveTimeoutMs?: number;
  /** At most this many images of one multipart request are in the pool at once (default: the pool's workers); the rest wait their turn. */
  requestConcurrency?: number;
  /** Ready once models are loaded and warm. */
  ready: () => boolean;
  /** True once shutdown has begun: API requests get 503 SHUTTING_DOWN and `Connection: close`. */
  draining?: () => boolean;
  /** When set, every route but the open ones (OPEN_PATHS) needs it (Authorization: Bearer, or x-api-key). */
  apiKey?: string;
  /** Origins allowed by CORS; empty: no CORS headers. */
  corsOrigins?: string[];
  /** Event-loop delay (ms) and heap (bytes) past which requests get 503 instead of more work. */
  pressure?: { maxEventLoopDelayMs: number; maxHeapUsedBytes: number; sampleIntervalMs?: number };
  /** pino options, or false for no logging. */
  logger?: boolean | Record<string, unknown>;
}

/** Default of AppOptions.receiveTimeoutMs: 20 MiB in 60 s needs about 3 Mbit/s. */
export const RECEIVE_TIMEOUT_MS = 60_000;

declare module 'fastify' {
  interface FastifyRequest {
    /** Fields for the request's log line: model, pipeline, image size, detection count. */
    summary: Record<string, unknown> | null;
  }
}

/** What routes need: the options, the error helpers and the metrics. */
export interface AppContext extends AppOptions {
  metrics: Metrics;
  requestConcurrency: number;
  /** The status and body of any error, as the error handler sends it; a 5xx is logged with its details here. */
  errorOf(request: FastifyRequest, err: unknown): ErrorBody & { status: number };
  /** An HTTP-layer error: its catalogue status, and its message or the catalogue's. */
  httpError(request: FastifyRequest, code: HttpErrorCode, message?: string): ErrorBody & { status: number };
}

