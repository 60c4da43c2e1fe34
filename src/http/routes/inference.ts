/**
 * POST /v1/detect, /v1/render, /v1/explain and /v1/proposals. The work runs in the inference
 * pool; the event loop only parses, validates and shapes the response.
 */

import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { convertBoxes } from '../../core/boxes.js';
import type { DetectionResult, DetectOptions, ExplainOptions } from '../../detector.js';
import { DetectError } from '../../errors.js';
import { drawDetections } from '../../image/draw.js';
import { drawOcclusionMap } from '../../image/heatmap.js';
import { checkOptions, DISPLAY_SCORE_THRESHOLD, pickOptions, querystringSchema, type OptionsOf } from '../../options.js';
import type { AppContext } from '../context.js';
import { mapWithConcurrency } from '../concurrency.js';
import { modelNamed } from '../../model/registry.js';
import { requestImages } from '../images.js';
import { didYouMean } from '../../suggest.js';

type DetectQuery = OptionsOf<'httpDetect'>;
type RenderQuery = OptionsOf<'render'>;
type ProposalsQuery = OptionsOf<'proposals'>;
type ExplainQuery = OptionsOf<'httpExplain'>;

/** Apply the response options: class filter, box format, normalisation. */
function shape(result: DetectionResult, q: Pick<DetectQuery, 'classes' | 'boxFormat' | 'normalized'>): DetectionResult {
  const wanted = q.classes ? new Set(q.classes.split(',').map((c) => c.trim())) : undefined;
  const format = q.boxFormat ?? 'xyxy';
  const detections = result.detections
    .filter((d) => !wanted || wanted.has(d.label))
    .map((d) => {
      let box = Array.from(convertBoxes(d.box, 'xyxy', format)) as [number, number, number, number];
      if (q.normalized) box = [box[0] / result.image.width, box[1] / result.image.height, box[2] / result.image.width, box[3] / result.image.height];
      return { ...d, box };
    });
  return { ...result, detections };
}

/** The detector's options a query sets: the detect operation's, less the model; detections are shown here, at the display threshold by default. */
function detectOptions(q: DetectQuery | RenderQuery): DetectOptions {
  const { model: _model, ...options } = pickOptions('detect', q);
  return { ...options, scoreThreshold: q.scoreThreshold ?? DISPLAY_SCORE_THRESHOLD };
}

/** An explain query's detector options: those of the library's explain, less the model, at the display threshold by default. */
function explainOptions(q: ExplainQuery): ExplainOptions {
  const { model: _model, ...options } = pickOptions('explain', q);
  return { ...options, scoreThreshold: q.scoreThreshold ?? DISPLAY_SCORE_THRESHOLD };
}

/**
 * A class filter names only labels the model has: a filter on a label it cannot detect would
 * answer 200 with nothing, as if the image had none.
 * @throws DetectError INVALID_OPTION listing the model's labels.
 */
function checkClasses(classes: string, model: string, labels: readonly string[]): void {
  const unknown = classes.split(',').map((c) => c.trim()).filter((c) => c && !labels.includes(c));
  if (unknown.length === 0) return;
  const hint = unknown.map((c) => didYouMean(c, labels)).find(Boolean) ?? '';
  throw new DetectError('INVALID_OPTION', `classes names ${unknown.map((c) => JSON.stringify(c)).join(', ')}, which model ${model} does not detect${hint}; its classes: ${labels.join(', ')}`);
}

/** The multipart field `proposals`: a JSON array of [x1, y1, x2, y2] for rcnn and fast-rcnn (checked by the detector). */
function proposalsField(fields: Record<string, string>): number[][] | undefined {
  if (fields.proposals === undefined) return undefined;
  try {
    return JSON.parse(fields.proposals) as number[][];
  } catch {
    throw new DetectError('INVALID_OPTION', 'the proposals field is not JSON; send a JSON array of [x1, y1, x2, y2] boxes in original-image pixels');
  }
}

export const inferenceRoutes: FastifyPluginAsync<{ ctx: AppContext }> = async (app, { ctx }) => {
  /**
   * A raw body's one result, or a multipart body's `{ results }`: one result or error per image, in
   * order, at most ctx.requestConcurrency of them in the pool at once.
   */
  const perImage = async <R>(request: FastifyRequest, images: Uint8Array[], multipart: boolean, run: (bytes: Uint8Array) => Promise<R>) => {
    if (!multipart) return run(images[0]!);
    const results = await mapWithConcurrency(images, ctx.requestConcurrency, (bytes) => run(bytes).catch((err: unknown) => ({ error: ctx.errorOf(request, err) })));
    return { results };
  };

  /** The model a query names, checked to have the classes it filters on. */
  const modelDir = (request: FastifyRequest, name: string | undefined, classes?: string): string => {
    const m = modelNamed(ctx.registry, name);
    request.summary = { ...request.summary, model: m.name };
    if (classes) checkClasses(classes, m.name, m.manifest.classes.slice(1));
    return m.dir;
  };

  app.post<{ Querystring: DetectQuery }>('/v1/detect', { schema: { querystring: querystringSchema('httpDetect') } }, async (request) => {
    const q = request.query;
    const dir = modelDir(request, q.model, q.classes);
    const { images, multipart, fields } = await requestImages(request, ctx.maxBodyBytes);
    const options = { ...detectOptions(q), proposals: proposalsField(fields) };
    const run = (bytes: Uint8Array) =>
      ctx.pool.detect({ modelDir: dir, bytes, options, settings: ctx.settings }).then((r) => {
        ctx.metrics.observeTimings(r.pipeline, r.timings);
        request.summary = { ...request.summary, pipeline: r.pipeline, image: `${r.image.width}x${r.image.height}`, detections: r.detections.length };
        return shape(r, q);
      });
    return perImage(request, images, multipart, run);
  });

  // The detections drawn on the image (one image, raw body or the first multipart field "image").
  app.post<{ Querystring: RenderQuery }>(
    '/v1/render',
    { schema: { querystring: querystringSchema('render') } },
    async (request, reply) => {
      const q = request.query;
      const dir = modelDir(request, q.model, q.classes);
      const { images } = await requestImages(request, ctx.maxBodyBytes);
      const options = detectOptions(q);
      const result = shape(await ctx.pool.detect({ modelDir: dir, bytes: images[0]!, options, settings: ctx.settings }), { classes: q.classes });
      request.summary = { ...request.summary, pipeline: result.pipeline, image: `${result.image.width}x${result.image.height}`, detections: result.detections.length };
      const format = q.format ?? 'png';
      return reply.type(`image/${format}`).send(await drawDetections(images[0]!, result.detections, format));
    },
  );

  // Occlusion maps of chosen detections (one image, raw body or the first multipart field "image"): JSON, or with heatmap=true the first map drawn.
  app.post<{ Querystring: ExplainQuery }>('/v1/explain', { schema: { querystring: querystringSchema('httpExplain') } }, async (request, reply) => {
    const q = request.query;
    const dir = modelDir(request, q.model);
    const { images } = await requestImages(request, ctx.maxBodyBytes);
    const result = await ctx.pool.explain({ modelDir: dir, bytes: images[0]!, options: explainOptions(q), settings: ctx.settings });
    ctx.metrics.observeTimings(`explain/${result.pipeline}`, result.timings);
    request.summary = { ...request.summary, pipeline: result.pipeline, image: `${result.image.width}x${result.image.height}`, explained: result.maps.length, passes: result.cost.passes };
    if (!q.heatmap) return result;
    const map = result.maps[0];
    if (!map) throw new DetectError('INVALID_OPTION', `heatmap draws the first explained detection, and the detect run found none above scoreThreshold ${q.scoreThreshold ?? DISPLAY_SCORE_THRESHOLD}; lower scoreThreshold, or give a box and label`);
    const png = await drawOcclusionMap(images[0]!, { ...result.grid }, map.drops, { ...map.target, score: map.baseline });
    return reply.type('image/png').send(png);
  });

  app.post<{ Querystring: ProposalsQuery }>('/v1/proposals', { schema: { querystring: querystringSchema('proposals') } }, async (request) => {
    const q = request.query;
    const { images, multipart } = await requestImages(request, ctx.maxBodyBytes);
    const { method = 'selective-search', model, ...options } = q;
    checkOptions('proposals', q, { method });
    if (method === 'rpn') {
      const dir = modelDir(request, model);
      const rpn = (bytes: Uint8Array) =>
        ctx.pool.rpnProposals({ modelDir: dir, bytes, options, settings: ctx.settings }).then((r) => {
          ctx.metrics.observeTimings('rpn', r.timings);
          request.summary = { ...request.summary, mode: 'rpn', image: `${r.image.width}x${r.image.height}`, proposals: r.proposals.length };
          return r;
        });
      return perImage(request, images, multipart, rpn);
    }
    const run = (bytes: Uint8Array) =>
      ctx.pool.proposals({ bytes, options, settings: ctx.settings }).then((r) => {
        ctx.metrics.observeTimings(`selective-search/${r.mode}`, r.timings);
        request.summary = { ...request.summary, mode: r.mode, image: `${r.image.width}x${r.image.height}`, proposals: r.proposals.length };
        return r;
      });
    return perImage(request, images, multipart, run);
  });
};
