import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { modelNamed } from '../../model/registry.js';
import type { AppContext } from '../context.js';

/**
 * Liveness and readiness, plain and as the Open Inference Protocol's paths.
 * Not ready is a 503 in the error envelope (code NOT_READY) that also keeps
 * the `status` word probes read.
 */
export const healthRoutes: FastifyPluginAsync<{ ctx: AppContext }> = async (app, { ctx }) => {
  const live = async () => ({ status: 'ok' });
  const notReady = (request: FastifyRequest, reply: FastifyReply) => {
    const { status, ...body } = ctx.httpError(request, 'NOT_READY');
    return reply.code(status).header('retry-after', '1').send({ status: 'not ready', ...body });
  };
  const ready = async (request: FastifyRequest, reply: FastifyReply) => (ctx.ready() ? { status: 'ready' } : notReady(request, reply));
  app.get('/healthz', live);
  app.get('/v2/health/live', live);
  app.get('/readyz', ready);
  app.get('/v2/health/ready', ready);
  app.get<{ Params: { name: string } }>('/v2/models/:name/ready', async (request, reply) => {
    modelNamed(ctx.registry, request.params.name);
    return ready(request, reply);
  });
};
