/**
 * The contract and the pages: GET /openapi.yaml (the one source of truth),
 * GET /docs (Swagger UI over the same document, its assets served locally)
 * and GET / (the demo page).
 */

import { readFile } from 'node:fs/promises';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyPluginAsync } from 'fastify';
import { parse } from 'yaml';
import { DEMO_PAGE } from '../demo-page.js';

/** At the package root, beside src/ and dist/. */
const OPENAPI = new URL('../../../openapi.yaml', import.meta.url);

export const docsRoutes: FastifyPluginAsync = async (app) => {
  const text = await readFile(OPENAPI, 'utf8');
  await app.register(swagger, { mode: 'static', specification: { document: parse(text) } });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  app.get('/openapi.yaml', { schema: { hide: true } }, async (_request, reply) => reply.type('application/yaml').send(text));
  app.get('/', { schema: { hide: true } }, async (_request, reply) => reply.type('text/html; charset=utf-8').send(DEMO_PAGE));
};
