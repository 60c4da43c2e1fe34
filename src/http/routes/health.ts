import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../app.js';

/** Liveness and readiness, plain and as the Open Inference Protocol's paths. */
export async function healthRoutes(app: FastifyInstance, ctx: AppContext): Promise<void> {
  const live = async () => ({ status: 'ok' });
  const ready = async (_: unknown, reply: import('fastify').FastifyReply) => {
    if (!ctx.ready()) return reply.code(503).send({ status: 'not ready' });
    return { status: 'ready' };
  };
  app.get('/healthz', live);
  app.get('/v2/health/live', live);
  app.get('/readyz', ready);
  app.get('/v2/health/ready', ready);
  app.get<{ Params: { name: string } }>('/v2/models/:name/ready', async (request, reply) => {
    if (!ctx.registry.models.some((m) => m.name === request.params.name)) return reply.code(404).send({ status: 'unknown model' });
    if (!ctx.ready()) return reply.code(503).send({ status: 'not ready' });
    return { status: 'ready' };
  });
}
