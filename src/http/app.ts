/**
 * The HTTP application. buildApp() never listens, so tests drive it with
 * app.inject(); `rcnn-serve serve` listens.
 */

import { timingSafeEqual } from 'node:crypto';
import cors from '@fastify/cors';
import multipart from '@fastify/multipart';
import underPressure from '@fastify/under-pressure';
import Fastify, { LogController, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { DetectError } from '../errors.js';
import type { Registry } from '../model/registry.js';
import type { WorkerSettings } from '../workers/inference-worker.js';
import { DeadlineError, PoolBusyError, type InferencePool } from '../workers/inference-pool.js';
import { HTTP_ERRORS, STATUS_OF, type ErrorBody, type HttpErrorCode } from './error-catalog.js';
import { IMAGE_TYPES, MalformedMultipartError, NoImageError } from './images.js';
import { Metrics } from './metrics.js';
import { docsRoutes } from './routes/docs.js';
import { healthRoutes } from './routes/health.js';
import { inferenceRoutes } from './routes/inference.js';
import { modelRoutes } from './routes/models.js';

export interface AppOptions {
  registry: Registry;
  pool: InferencePool;
  settings: WorkerSettings;
  /** Largest accepted request body, in bytes. */
  maxBodyBytes: number;
  /** Ready once models are loaded and warm. */
  ready: () => boolean;
  /** When set, every route but health, readiness and the OpenAPI document needs it (Authorization: Bearer, or x-api-key). */
  apiKey?: string;
  /** Origins allowed by CORS; empty: no CORS headers. */
  corsOrigins?: string[];
  /** Event-loop delay (ms) and heap (bytes) past which requests get 503 instead of more work. */
  pressure?: { maxEventLoopDelayMs: number; maxHeapUsedBytes: number; sampleIntervalMs?: number };
  /** pino options, or false for no logging. */
  logger?: boolean | Record<string, unknown>;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Fields for the request's log line: model, pipeline, image size, detection count. */
    summary: Record<string, unknown> | null;
  }
}

/** What routes need: the options, the error helpers and the metrics. */
export interface AppContext extends AppOptions {
  metrics: Metrics;
  /** The status and body of any error, as the error handler sends it. */
  errorOf(request: FastifyRequest, err: unknown): ErrorBody & { status: number };
}

export async function buildApp(options: AppOptions): Promise<FastifyInstance> {
  const app = Fastify({
    logger: options.logger ?? false,
    // One log line per request, written in onResponse below, instead of fastify's two.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: options.maxBodyBytes,
    routerOptions: { maxParamLength: 200 },
    requestIdHeader: 'x-request-id',
    // Unknown query parameters are refused (fastify's default strips them silently).
    ajv: { customOptions: { coerceTypes: true, allErrors: false, removeAdditional: false } },
  });

  const errorBody = (request: FastifyRequest, code: string, message: string): ErrorBody => ({ code, message, requestId: String(request.id) });
  /** An HTTP-layer error: its catalogue status, and its message or the catalogue's. */
  const httpError = (request: FastifyRequest, code: HttpErrorCode, message: string = HTTP_ERRORS[code].message) => ({
    status: HTTP_ERRORS[code].status,
    ...errorBody(request, code, message),
  });
  const errorOf = (request: FastifyRequest, err: unknown): ErrorBody & { status: number } => {
    if (err instanceof DetectError) return { status: STATUS_OF[err.code], ...errorBody(request, err.code, err.message) };
    if (err instanceof PoolBusyError) return httpError(request, 'BUSY');
    if (err instanceof DeadlineError) return httpError(request, 'DEADLINE_EXCEEDED', `${err.message}; retry, or send a smaller image`);
    if (err instanceof NoImageError) return { status: STATUS_OF.EMPTY_IMAGE, ...errorBody(request, 'EMPTY_IMAGE', err.message) };
    if (err instanceof MalformedMultipartError) return httpError(request, 'MALFORMED_MULTIPART', err.message);
    const e = err as { statusCode?: number; code?: string; validation?: unknown; message?: string };
    if (e.validation) return { status: STATUS_OF.INVALID_OPTION, ...errorBody(request, 'INVALID_OPTION', `query ${e.message ?? 'is invalid'}`) };
    if (e.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return httpError(request, 'BODY_TOO_LARGE', `${HTTP_ERRORS.BODY_TOO_LARGE.message} (${options.maxBodyBytes} bytes)`);
    if (e.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return httpError(request, 'UNSUPPORTED_MEDIA_TYPE');
    if (e.statusCode && e.statusCode >= 400 && e.statusCode < 500) return { ...httpError(request, 'BAD_REQUEST', e.message), status: e.statusCode };
    return httpError(request, 'INTERNAL_ERROR');
  };
  const metrics = new Metrics(options.pool, () => options.registry.models.length);
  const ctx: AppContext = { ...options, errorOf, metrics };

  // What a request did, for its log line: filled in by the routes.
  app.decorateRequest('summary', null);
  app.addHook('onRequest', async (request) => {
    request.summary = {};
  });
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    const seconds = reply.elapsedTime / 1000;
    metrics.requests.inc({ method: request.method, route, status: reply.statusCode });
    metrics.latency.observe({ method: request.method, route }, seconds);
    // Never the image bytes or the API key: the route, the outcome and what was detected.
    request.log.info({ route, method: request.method, status: reply.statusCode, ms: Math.round(reply.elapsedTime * 100) / 100, ...request.summary }, 'request');
  });
  app.get('/metrics', async (_request, reply) => reply.type(metrics.registry.contentType).send(await metrics.registry.metrics()));

  if (options.corsOrigins?.length) await app.register(cors, { origin: options.corsOrigins });
  // Raw image bodies arrive as bytes; anything else that is not multipart is refused with 415.
  app.addContentTypeParser([...IMAGE_TYPES], { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
  await app.register(multipart, { limits: { fileSize: options.maxBodyBytes, files: 64, fields: 64, parts: 128 } });

  app.setErrorHandler((err, request, reply: FastifyReply) => {
    const { status, ...body } = errorOf(request, err);
    if (status >= 500) request.log.error({ err }, 'request failed');
    if (status === 503) reply.header('retry-after', '1');
    return reply.code(status).send(body);
  });
  if (options.apiKey !== undefined) {
    const key = Buffer.from(options.apiKey);
    const open = /^\/(healthz|readyz|metrics|openapi\.yaml|docs|v2\/health\/|v2\/models\/[^/]+\/ready|$|\?)/;
    app.addHook('onRequest', async (request, reply) => {
      if (open.test(request.url)) return;
      const auth = request.headers.authorization;
      const given = Buffer.from(auth?.startsWith('Bearer ') ? auth.slice(7) : String(request.headers['x-api-key'] ?? ''));
      // Constant-time comparison, so the key cannot be guessed byte by byte from timings.
      if (given.length !== key.length || !timingSafeEqual(given, key)) {
        const { status, ...body } = httpError(request, 'UNAUTHORIZED');
        return reply.code(status).send(body);
      }
    });
  }
  app.setNotFoundHandler((request, reply) => {
    const { status, ...body } = httpError(request, 'NOT_FOUND', `no route ${request.method} ${request.url.split('?')[0]}`);
    return reply.code(status).send(body);
  });

  await healthRoutes(app, ctx);
  await docsRoutes(app);
  // The API routes in a context of their own, so that shedding load under
  // pressure never fails liveness, readiness or metrics (an orchestrator would
  // restart a pod for being busy).
  await app.register(async (api) => {
    await api.register(underPressure, {
      maxEventLoopDelay: options.pressure?.maxEventLoopDelayMs ?? 1000,
      maxHeapUsedBytes: options.pressure?.maxHeapUsedBytes ?? 0,
      sampleInterval: options.pressure?.sampleIntervalMs ?? 250,
      retryAfter: 1,
      pressureHandler: (request, reply) => {
        const { status, ...body } = httpError(request, 'BUSY', 'the server is overloaded (event-loop delay or heap over its limit); retry after the time in Retry-After');
        reply.code(status).header('retry-after', '1').send(body);
      },
    });
    await modelRoutes(api, ctx);
    await inferenceRoutes(api, ctx);
  });
  return app;
}
