import type { FastifyPluginAsync } from 'fastify';
import { PIPELINES } from '../../detector.js';
import { packageLayers, type PackageLayers } from '../../inspect/package-layers.js';
import { precisionsOf } from '../../model/manifest.js';
import { modelNamed, type RegisteredModel } from '../../model/registry.js';
import type { AppContext } from '../context.js';
import { VIEWABLE_OPS } from '../../onnx/layer-outputs.js';

function summary(m: RegisteredModel) {
  const pipelines = PIPELINES.filter((p) => Object.hasOwn(m.manifest.pipelines, p));
  return {
    name: m.name,
    description: m.manifest.description ?? '',
    classes: m.manifest.classes,
    pipelines,
    input: m.manifest.input,
    precisions: precisionsOf(m.manifest),
    ...(m.manifest.quantization && { quantization: { stored: m.manifest.precision === 'int8', calibration: m.manifest.quantization.calibration } }),
    // Each pipeline's own defaults: its scoreThreshold is the evaluation threshold (a request's default is the display one).
    postprocess: Object.fromEntries(
      pipelines.map((p) => {
        const { scoreThreshold, nmsThreshold, detectionsPerImage } = m.manifest.pipelines[p]!.postprocess;
        return [p, { scoreThreshold, nmsThreshold, detectionsPerImage }];
      }),
    ),
  };
}

export const modelRoutes: FastifyPluginAsync<{ ctx: AppContext }> = async (app, { ctx }) => {
  // Layer tables read from the ONNX structure, once per model.
  const layers = new Map<string, Promise<PackageLayers>>();
  const layersOf = (m: RegisteredModel) => {
    let l = layers.get(m.name);
    if (!l) {
      l = packageLayers(m.dir, m.manifest);
      layers.set(m.name, l);
    }
    return l;
  };
  app.get('/v1/models', async () => ({ models: ctx.registry.models.map(summary) }));
  app.get<{ Params: { name: string } }>('/v1/models/:name', async (request) => {
    const m = modelNamed(ctx.registry, request.params.name);
    const layers = await layersOf(m);
    // The layers POST /v1/features shows: the backbone's activations, poolings and normalisations.
    const featureLayers = layers.graphs[m.manifest.backbone.file]!.layers.filter((l) => VIEWABLE_OPS.has(l.type)).map(({ name, type, outputShape }) => ({ name, type, outputShape }));
    return { ...summary(m), layers, featureLayers };
  });
};
