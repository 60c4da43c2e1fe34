/**
 * Server configuration from the environment, validated at start; a bad value
 * stops the start with a message naming the variable, the value and what is
 * allowed. README's configuration table lists the same variables.
 */

import { RECEIVE_TIMEOUT_MS } from '../http/context.js';
import { ROI_PLACEMENTS, SHIPPED_MODELS_DIR, type RoiPlacement } from '../model/package.js';
import { DEFAULT_PROPOSAL_MAX_PIXELS } from '../proposals.js';
import { DEVICE_FALLBACKS, parseDevice, type Device, type DeviceFallback } from '../runtime/device.js';
import { defaultThreads, defaultWorkers } from '../workers/defaults.js';

export interface ServerConfig {
  port: number;
  host: string;
  modelsDir: string;
  device: Device;
  workers: number;
  /** Each worker's JavaScript heap limit, MB. */
  workerHeapMb: number;
  ortThreads: number;
  /** Requests a worker takes at once, their graphs run as one batch (MAX_BATCH; 1: none). */
  maxBatch: number;
  /** Where the RoI ops run (ROI_PLACEMENT: host or graph). */
  roiPlacement: RoiPlacement;
  /** DEVICE=cuda where CUDA cannot be used (DEVICE_FALLBACK): 'cpu', run there with one warning; 'error', refuse to start. */
  deviceFallback: DeviceFallback;
  /** Feature views (FEATURE_VIEWS: on or off): the backbones' layers exposed for POST /v1/features and the filters route. */
  featureViews: boolean;
  maxQueue: number;
  maxBodyBytes: number;
  maxPixels: number;
  /** Pixel limit of selective search (POST /v1/proposals, and detection with rcnn and fast-rcnn), at most maxPixels. */
  proposalMaxPixels: number;
  /** How long a client may take to send a request, headers and body, ms. */
  bodyTimeoutMs: number;
  /** Images of one multipart request in the worker pool at once. */
  requestConcurrency: number;
  /** Per-request deadline, ms; 0 for none. */
  requestTimeoutMs: number;
  /** When set, every route but health, readiness and the OpenAPI document needs it. */
  apiKey: string | undefined;
  /** CORS origins, comma-separated in CORS_ORIGINS; empty: none. */
  corsOrigins: string[];
  /** In-flight requests get this long to finish after SIGTERM, ms. */
  shutdownTimeoutMs: number;
  logLevel: string;
}

export class ConfigError extends Error {}

function integer(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const v = Number(raw);
  if (!Number.isInteger(v) || v < min || v > max) throw new ConfigError(`${name}=${JSON.stringify(raw)} is invalid; allowed: an integer from ${min} to ${max}`);
  return v;
}

/** A variable that names one of `allowed`; unset or empty: `fallback`. */
function oneOf<T extends string>(env: NodeJS.ProcessEnv, name: string, allowed: readonly T[], fallback: T = allowed[0]!): T {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!(allowed as readonly string[]).includes(raw)) throw new ConfigError(`${name}=${JSON.stringify(raw)} is invalid; allowed: ${allowed.join(', ')}`);
  return raw as T;
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

export function configFromEnv(env: NodeJS.ProcessEnv = process.env): ServerConfig {
  const workers = integer(env, 'WORKERS', defaultWorkers(), 1, 64);
  const logLevel = oneOf(env, 'LOG_LEVEL', LOG_LEVELS, 'info');
  let device: Device;
  try {
    device = parseDevice(env.DEVICE ?? 'cpu');
  } catch (err) {
    throw new ConfigError(`DEVICE: ${(err as Error).message}`);
  }
  return {
    port: integer(env, 'PORT', 8080, 0, 65535),
    host: env.HOST ?? '0.0.0.0',
    modelsDir: env.MODELS_DIR ?? SHIPPED_MODELS_DIR,
    device,
    workers,
    // Measured on Node 20 and 24: selective search on 4 MP of noise fits in 20 MB, and a worker's start with a
    // small request needs 16 to 24 MB (Node 24); under 32 MB a worker may not start. 512: 20 times that.
    workerHeapMb: integer(env, 'WORKER_HEAP_MB', 512, 32, 65536),
    ortThreads: integer(env, 'ORT_THREADS', defaultThreads(workers), 1, 256),
    maxBatch: integer(env, 'MAX_BATCH', 1, 1, 64),
    roiPlacement: oneOf(env, 'ROI_PLACEMENT', ROI_PLACEMENTS),
    deviceFallback: oneOf(env, 'DEVICE_FALLBACK', DEVICE_FALLBACKS),
    featureViews: oneOf(env, 'FEATURE_VIEWS', ['on', 'off']) === 'on',
    maxQueue: integer(env, 'MAX_QUEUE', 4 * workers, 0, 100000),
    maxBodyBytes: integer(env, 'MAX_BODY_BYTES', 20 * 1024 * 1024, 1024, 1024 * 1024 * 1024),
    maxPixels: integer(env, 'MAX_PIXELS', 40_000_000, 1, 1_000_000_000),
    // At most 30 MP: selective search's kernels need about 112 bytes per pixel of WebAssembly
    // memory, whose 4 GiB end at about 38 MP.
    proposalMaxPixels: integer(env, 'PROPOSALS_MAX_PIXELS', DEFAULT_PROPOSAL_MAX_PIXELS, 1, 30_000_000),
    bodyTimeoutMs: integer(env, 'BODY_TIMEOUT_MS', RECEIVE_TIMEOUT_MS, 1000, 3_600_000),
    requestConcurrency: integer(env, 'REQUEST_CONCURRENCY', workers, 1, 64),
    requestTimeoutMs: integer(env, 'REQUEST_TIMEOUT_MS', 30_000, 0, 3_600_000),
    apiKey: env.API_KEY === undefined || env.API_KEY === '' ? undefined : env.API_KEY,
    corsOrigins: (env.CORS_ORIGINS ?? '').split(',').map((o) => o.trim()).filter(Boolean),
    shutdownTimeoutMs: integer(env, 'SHUTDOWN_TIMEOUT_MS', 10_000, 0, 600_000),
    logLevel,
  };
}
