import type { FastifyInstance } from 'fastify';
import { PIPELINES } from '../../detector.js';
import { DetectError } from '../../errors.js';
import { packageLayers, type PackageLayers } from '../../model/package-layers.js';
import type { RegisteredModel } from '../../model/registry.js';
import type { AppContext } from '../app.js';

function summary(m: RegisteredModel) {
  return {
    name: m.name,
    description: m.manifest.description ?? '',
    classes: m.manifest.classes,
    pipelines: PIPELINES.filter((p) => Object.hasOwn(m.manifest.pipelines, p)),
    input: m.manifest.input,
  };
}

export async function modelRoutes(app: FastifyInstance, ctx: AppContext): Promise<void> {
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
    const m = ctx.registry.models.find((x) => x.name === request.params.name);
    if (!m) throw new DetectError('MODEL_NOT_FOUND', `no model ${JSON.stringify(request.params.name)}; available: ${ctx.registry.models.map((x) => x.name).join(', ')}`);
    return { ...summary(m), layers: await layersOf(m) };
  });
}
