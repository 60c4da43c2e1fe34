/**
 * `rcnn-serve serve`: load the configuration, find the model packages, start
 * the worker pool, warm every worker on every model, listen; on SIGTERM or
 * SIGINT stop being ready, let in-flight and queued requests finish within
 * the shutdown timeout, answer those still waiting at its end with 503
 * SHUTTING_DOWN, stop the workers, exit 0.
 */

import { createServer } from 'node:net';
import type { ServerConfig } from '../config/env.js';
import { encodePng } from '../image/encode.js';
import { DEFAULT_MODEL, defaultModelDomain } from '../model/package.js';
import { scanModels } from '../model/registry.js';
import { InferencePool } from '../workers/inference-pool.js';
import { buildApp } from './app.js';

export class StartError extends Error {}

/** Why a port cannot be listened on, and what to do. */
function listenProblem(err: NodeJS.ErrnoException, host: string, port: number): string {
  if (err.code === 'EADDRINUSE') return `port ${port} on ${host} is in use (EADDRINUSE): stop what listens there, or set PORT to a free port`;
  if (err.code === 'EACCES') return `port ${port} on ${host} needs privileges (EACCES): set PORT to 1024 or above`;
  if (err.code === 'EADDRNOTAVAIL') return `HOST ${host} is not an address of this machine (EADDRNOTAVAIL): set HOST to one of its addresses, or 0.0.0.0`;
  return `cannot listen on ${host}:${port}: ${err.message}`;
}

/** Listen on the port for a moment: a busy one fails the start at once, before models take their time to load. */
async function checkListenable(host: string, port: number): Promise<void> {
  if (port === 0) return;
  await new Promise<void>((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen({ host, port, exclusive: true }, () => probe.close(() => resolve()));
  }).catch((err: NodeJS.ErrnoException) => {
    throw new StartError(listenProblem(err, host, port));
  });
}

/**
 * After shutdown's cut-off, how long a run may take to reach its next stage
 * and stop before its worker is terminated anyway (R-CNN's batches and Faster
 * R-CNN's scales take well under a second; selective search checks only
 * inside its grouping, and before the first grouping of a colour space come
 * its conversion, texture, graph, segmentation and region features: about
 * 8 s on a 9 MP image, measured, so about 4 s at the 4 MP default limit).
 */
const STOP_GRACE_MS = 5000;

/** How long one model may take to load and run once in every worker at start. */
const WARM_UP_LIMIT_MS = 120_000;

/** A small PNG every model can run on: warming loads and compiles each graph in each worker. */
function warmImage(): Promise<Uint8Array> {
  const data = new Uint8Array(64 * 48 * 3);
  for (let i = 0; i < data.length; i += 3) data.set([120, 140, 90], i);
  return encodePng({ data, width: 64, height: 48 });
}

export async function serve(config: ServerConfig): Promise<{ close: () => Promise<void>; port: number }> {
  await checkListenable(config.host, config.port);
  const registry = await scanModels(config.modelsDir); // the default package first
  const noUsable = () => new StartError(`no usable model package under ${config.modelsDir}${registry.broken.length ? `: ${registry.broken.map((b) => `${b.dir}: ${b.reason}`).join('; ')}` : ''}`);
  // Before any worker starts: a worker stopped while it loads ONNX Runtime can abort the process (exit by signal).
  if (registry.models.length === 0) throw noUsable();
  let ready = false;
  let draining = false;
  const pool = new InferencePool({
    workers: config.workers,
    maxQueue: Math.max(config.maxQueue, config.workers),
    deadlineMs: config.requestTimeoutMs,
    heapMb: config.workerHeapMb,
    tasksPerWorker: config.maxBatch,
  });
  const settings = {
    device: config.device,
    intraOpThreads: config.ortThreads,
    maxBatch: config.maxBatch,
    roiPlacement: config.roiPlacement,
    deviceFallback: config.deviceFallback,
    featureLayers: config.featureViews,
    limits: { maxBytes: config.maxBodyBytes, maxPixels: config.maxPixels },
    proposalMaxPixels: config.proposalMaxPixels,
  };
  const app = await buildApp({
    registry,
    pool,
    settings,
    maxBodyBytes: config.maxBodyBytes,
    receiveTimeoutMs: config.bodyTimeoutMs,
    requestConcurrency: config.requestConcurrency,
    apiKey: config.apiKey,
    corsOrigins: config.corsOrigins,
    ready: () => ready,
    draining: () => draining,
    logger: { level: config.logLevel },
  });
  pool.onIdleWorkerError((err) => app.log.error({ err }, 'an idle inference worker failed and was replaced'));
  // Each worker says it as it loads a model (a device fallback, say): the log says it once.
  const warned = new Set<string>();
  pool.onWarning((message) => {
    if (warned.has(message)) return;
    warned.add(message);
    app.log.warn(message);
  });
  for (const b of registry.broken) app.log.warn({ dir: b.dir }, `skipping model package: ${b.reason}`);

  // Warm: one request per worker per model; a model that fails to load is dropped. Bounded, so a
  // worker that cannot start (its tasks would wait forever) fails the start instead of hanging it.
  const image = await warmImage();
  for (const m of [...registry.models]) {
    let timer: NodeJS.Timeout | undefined;
    try {
      const warm = Promise.all(Array.from({ length: config.workers }, () => pool.detect({ modelDir: m.dir, bytes: image, options: {}, settings })));
      const limit = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`did not load and warm up within ${WARM_UP_LIMIT_MS / 1000} s`)), WARM_UP_LIMIT_MS);
      });
      await Promise.race([warm, limit]);
      clearTimeout(timer);
      const classes = m.manifest.classes.slice(1);
      app.log.info({ model: m.name, classes }, `model ${m.name} loaded and warm; it detects ${classes.length} classes: ${classes.join(', ')}`);
      if (m.name === DEFAULT_MODEL) app.log.info(defaultModelDomain(classes, 'point MODELS_DIR at the folder that holds it'));
    } catch (err) {
      clearTimeout(timer);
      registry.models.splice(registry.models.indexOf(m), 1);
      registry.broken.push({ dir: m.dir, reason: (err as Error).message });
      app.log.warn({ dir: m.dir }, `skipping model package: ${(err as Error).message}`);
    }
  }
  if (registry.models.length === 0) {
    await pool.close();
    await app.close();
    throw noUsable();
  }

  try {
    await app.listen({ port: config.port, host: config.host });
  } catch (err) {
    await pool.close();
    await app.close();
    throw new StartError(listenProblem(err as NodeJS.ErrnoException, config.host, config.port));
  }
  ready = true;
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const base = `http://${config.host === '0.0.0.0' || config.host === '::' ? 'localhost' : config.host}:${port}`;
  app.log.info({ demo: `${base}/`, docs: `${base}/docs`, metrics: `${base}/metrics` }, `ready: the demo page at ${base}/, the API docs at ${base}/docs, metrics at ${base}/metrics`);
  /**
   * Stop listening and close idle connections; requests in flight and queued
   * get shutdownTimeoutMs to finish; then every one still waiting is answered
   * 503 SHUTTING_DOWN (its run stops at its next stage), and a second later any
   * connection still open is closed. Then the workers stop.
   */
  const close = async (): Promise<void> => {
    ready = false;
    draining = true;
    const cutoff = setTimeout(() => pool.abandon(), config.shutdownTimeoutMs);
    const force = setTimeout(() => app.server.closeAllConnections(), config.shutdownTimeoutMs + 1000);
    await app.close();
    clearTimeout(cutoff);
    clearTimeout(force);
    pool.abandon();
    await pool.close(STOP_GRACE_MS);
  };
  return { close, port };
}
