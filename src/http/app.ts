/**
 * The HTTP application. buildApp() never listens, so tests drive it with
 * app.inject(); `rcnn-serve serve` listens.
 */

import { randomUUID, timingSafeEqual } from 'node:crypto';
import cors from '@fastify/cors';
import multipart from '@fastify/multipart';
import underPressure from '@fastify/under-pressure';
import Fastify, { LogController, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { DetectError } from '../errors.js';
import { DeadlineError, PoolBusyError, ShuttingDownError, WorkerLostError } from '../workers/inference-pool.js';
import { RECEIVE_TIMEOUT_MS, type AppContext, type AppOptions } from './context.js';
import { HTTP_ERRORS, publicMessage5xx, STATUS_OF, type ErrorBody, type HttpErrorCode } from './error-catalog.js';
import { BodyTooLargeError, IMAGE_TYPES, MalformedMultipartError, MULTIPART_LIMITS, NoImageError } from './images.js';
import { lingerOnClose } from './lingering-close.js';
import { Metrics } from './metrics.js';
import { queryProblem, type QueryError } from './query-problem.js';
import { answerFailedExpectation, clientErrorHandler, frameworkErrors } from './protocol-errors.js';
import { docsRoutes } from './routes/docs.js';
import { featureRoutes } from './routes/features.js';
import { healthRoutes } from './routes/health.js';
import { inferenceRoutes } from './routes/inference.js';
import { modelRoutes } from './routes/models.js';

/** Longest path segment (a model name in /v1/models/{name}); longer gets 414 URI_TOO_LONG. */
const MAX_PARAM_LENGTH = 200;

/**
 * Routes open without the API key: liveness, readiness and metrics (probes and
 * scrapers carry no key), the contract, and the static pages (the demo page
 * and Swagger UI hold no model data; the API calls they make need the key).
 * `/v2/models/{name}/ready` is not open: it tells which model names exist,
 * as `GET /v1/models` does.
 */
const OPEN_PATHS: ReadonlySet<string> = new Set(['/healthz', '/readyz', '/v2/health/live', '/v2/health/ready', '/metrics', '/openapi.yaml', '/', '/docs']);
const isOpen = (path: string) => OPEN_PATHS.has(path) || path.startsWith('/docs/');

export async function buildApp(options: AppOptions): Promise<FastifyInstance> {
  const receiveTimeoutMs = options.receiveTimeoutMs ?? RECEIVE_TIMEOUT_MS;
  const app = Fastify({
    logger: options.logger ?? false,
    // One log line per request, written in onResponse below, instead of fastify's two.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: options.maxBodyBytes,
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    requestIdHeader: 'x-request-id',
    genReqId: () => randomUUID(),
    // Node's timers for a slow client: the whole request (headers and body) within receiveTimeoutMs,
    // the headers within at most 30 s of it; checked every second (Node's default is every 30 s).
    requestTimeout: receiveTimeoutMs,
    http: { headersTimeout: Math.min(30_000, receiveTimeoutMs), connectionsCheckingInterval: Math.min(1000, receiveTimeoutMs) },
    // Draining is answered by the hook below, in the envelope.
    return503OnClosing: false,
    frameworkErrors: frameworkErrors(MAX_PARAM_LENGTH),
    clientErrorHandler: (err, socket) => onClientError(err as NodeJS.ErrnoException, socket),
    // Unknown query parameters are refused (fastify's default strips them silently).
    ajv: { customOptions: { coerceTypes: true, allErrors: false, removeAdditional: false } },
  });
  const onClientError = clientErrorHandler(app.log);
  answerFailedExpectation(app.server, app.log);

  const errorBody = (request: FastifyRequest, code: string, message: string): ErrorBody => ({ code, message, requestId: String(request.id) });
  const httpError = (request: FastifyRequest, code: HttpErrorCode, message: string = HTTP_ERRORS[code].message) => ({
    status: HTTP_ERRORS[code].status,
    ...errorBody(request, code, message),
  });
  /** The envelope of any error, with the error's own message. */
  const classify = (request: FastifyRequest, err: unknown): ErrorBody & { status: number } => {
    if (err instanceof DetectError) return { status: STATUS_OF[err.code], ...errorBody(request, err.code, err.message) };
    if (err instanceof PoolBusyError) return httpError(request, 'BUSY');
    if (err instanceof ShuttingDownError) return httpError(request, 'SHUTTING_DOWN');
    if (err instanceof WorkerLostError) return httpError(request, 'WORKER_LOST', err.message);
    if (err instanceof DeadlineError) return httpError(request, 'DEADLINE_EXCEEDED', `${err.message}; retry, or send a smaller image`);
    if (err instanceof NoImageError) return { status: STATUS_OF.EMPTY_IMAGE, ...errorBody(request, 'EMPTY_IMAGE', err.message) };
    if (err instanceof MalformedMultipartError) return httpError(request, 'MALFORMED_MULTIPART', err.message);
    if (err instanceof BodyTooLargeError) return httpError(request, 'BODY_TOO_LARGE', err.message);
    const e = err as { statusCode?: number; code?: string; validation?: unknown; message?: string };
    if (e.validation) return { status: STATUS_OF.INVALID_OPTION, ...errorBody(request, 'INVALID_OPTION', queryProblem(request, e.validation as QueryError[]) ?? `query ${e.message ?? 'is invalid'}`) };
    if (e.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return httpError(request, 'BODY_TOO_LARGE', `${HTTP_ERRORS.BODY_TOO_LARGE.message} (${options.maxBodyBytes} bytes)`);
    if (e.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return httpError(request, 'UNSUPPORTED_MEDIA_TYPE');
    if (e.code === 'FST_ERR_CTP_EMPTY_TYPE') return httpError(request, 'UNSUPPORTED_MEDIA_TYPE', `the Content-Type header is empty; ${HTTP_ERRORS.UNSUPPORTED_MEDIA_TYPE.message}`);
    if (e.statusCode && e.statusCode >= 400 && e.statusCode < 500) return { ...httpError(request, 'BAD_REQUEST', e.message), status: e.statusCode };
    return httpError(request, 'INTERNAL_ERROR');
  };
  const errorOf = (request: FastifyRequest, err: unknown): ErrorBody & { status: number } => {
    const error = classify(request, err);
    if (error.status < 500) return error;
    request.log.error({ err, code: error.code }, 'request failed');
    // The HTTP layer's 5xx messages are the catalogue's own; a DetectError's text may name files and graph nodes.
    return err instanceof DetectError ? { ...error, message: publicMessage5xx(err.code) } : error;
  };
  const metrics = new Metrics(options.pool, () => options.registry.models.length);
  const ctx: AppContext = { ...options, requestConcurrency: options.requestConcurrency ?? options.pool.options.workers, errorOf, httpError, metrics };

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
  // While draining, every response closes its connection, so that the server's close is not
  // held by idle keep-alive connections until its force-close. A 503 closes its connection too
  // (Envoy's overload manager sheds keep-alive the same way): a client's retry then opens a new
  // one, which a connection balancer (DNS round robin, IPVS, kube-proxy) may send to another
  // replica. On the kept one, every retry came back to this full queue: in test:swarm one image
  // ran out of its 20 retries while two other replicas had room.
  // A response sent before the request's body was read closes its connection too (the rest of
  // the body is no next request), lingering so that the client sees it: see lingering-close.ts.
  app.addHook('onSend', async (request, reply) => {
    const bodyUnread = request.raw.complete === false;
    if (options.draining?.() || reply.statusCode === 503 || bodyUnread) reply.header('connection', 'close');
    if (bodyUnread) lingerOnClose(request.raw);
  });
  app.get('/metrics', async (_request, reply) => reply.type(metrics.registry.contentType).send(await metrics.registry.metrics()));

  if (options.corsOrigins?.length) await app.register(cors, { origin: options.corsOrigins });
  // Raw image bodies arrive as bytes; anything else that is not multipart is refused with 415
  // (fastify's own JSON and text parsers are removed: no route takes either).
  app.removeAllContentTypeParsers();
  app.addContentTypeParser([...IMAGE_TYPES], { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
  await app.register(multipart, {
    limits: { fileSize: options.maxBodyBytes, files: MULTIPART_LIMITS.files, fields: MULTIPART_LIMITS.fields, parts: MULTIPART_LIMITS.parts, fieldSize: MULTIPART_LIMITS.fieldBytes, headerPairs: 16 },
  });

  app.setErrorHandler((err, request, reply: FastifyReply) => {
    const { status, ...body } = errorOf(request, err);
    if (status === 503) reply.header('retry-after', '1');
    return reply.code(status).send(body);
  });
  if (options.apiKey !== undefined) {
    const key = Buffer.from(options.apiKey);
    app.addHook('onRequest', async (request, reply) => {
      if (isOpen(request.url.split('?')[0]!)) return;
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
    const { status, ...body } = httpError(request, 'NOT_FOUND', `no route ${request.method} ${request.url.split('?')[0]!.slice(0, 200)}`);
    return reply.code(status).send(body);
  });

  await app.register(healthRoutes, { ctx });
  await app.register(docsRoutes);
  // The API routes in a context of their own, so that shedding load under
  // pressure never fails liveness, readiness or metrics (an orchestrator would
  // restart a pod for being busy).
  await app.register(async (api) => {
    api.addHook('onRequest', async (request, reply) => {
      if (!options.draining?.()) return;
      const { status, ...body } = httpError(request, 'SHUTTING_DOWN');
      return reply.code(status).header('retry-after', '1').send(body);
    });
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
    await api.register(modelRoutes, { ctx });
    await api.register(inferenceRoutes, { ctx });
    await api.register(featureRoutes, { ctx });
  });
  return app;
}
