/**
 * Feature views (Zeiler & Fergus 2014): POST /v1/features, a backbone layer's
 * strongest activation maps for an image (PNG tiles, or JSON arrays); GET
 * /v1/models/{name}/filters, the first layer's filters as a picture. The
 * backbone runs in the inference pool; the pictures are drawn here by sharp.
 */

import type { FastifyPluginAsync } from 'fastify';
import { drawActivationTiles, drawFilters } from '../../image/feature-tiles.js';
import { modelNamed } from '../../model/registry.js';
import { pickOptions, querystringSchema, type OptionsOf } from '../../options.js';
import type { AppContext } from '../context.js';
import { requestImages } from '../images.js';

/** Width of one activation tile, pixels. */
const TILE_WIDTH = 192;

export const featureRoutes: FastifyPluginAsync<{ ctx: AppContext }> = async (app, { ctx }) => {
  app.post<{ Querystring: OptionsOf<'httpFeatures'> }>('/v1/features', { schema: { querystring: querystringSchema('httpFeatures') } }, async (request, reply) => {
    const q = request.query;
    const m = modelNamed(ctx.registry, q.model);
    request.summary = { ...request.summary, model: m.name, layer: q.layer };
    const { images } = await requestImages(request, ctx.maxBodyBytes);
    const { model: _model, ...options } = pickOptions('features', q);
    const result = await ctx.pool.features({ modelDir: m.dir, bytes: images[0]!, options, settings: ctx.settings });
    ctx.metrics.observeTimings('features', result.timings);
    request.summary = { ...request.summary, image: `${result.image.width}x${result.image.height}`, channels: result.channels.length };
    if (q.arrays) return result;
    const [, height, width] = result.shape;
    const png = await drawActivationTiles(result.channels.map((c) => ({ data: c.map, width, height })), TILE_WIDTH);
    return reply.type('image/png').header('x-channels', result.channels.map((c) => c.index).join(',')).send(png);
  });

  app.get<{ Params: { name: string } }>('/v1/models/:name/filters', async (request, reply) => {
    const m = modelNamed(ctx.registry, request.params.name);
    request.summary = { ...request.summary, model: m.name };
    const f = await ctx.pool.filters({ modelDir: m.dir, settings: ctx.settings });
    return reply.type('image/png').header('x-filters', f.dims.join('x')).send(await drawFilters(f.dims, f.data, f.channelOrder));
  });
};
