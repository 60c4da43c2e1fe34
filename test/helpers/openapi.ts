/**
 * Check responses against openapi.yaml: the schema of (method, path, status)
 * from the document, validated with Ajv (JSON Schema 2020-12, as OpenAPI 3.1).
 */
import { readFileSync } from 'node:fs';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { parse } from 'yaml';
import { fixturePath } from './fixtures.js';

const spec = parse(readFileSync(fixturePath('..', '..', 'openapi.yaml'), 'utf8'));
const ajv = new Ajv2020({ strict: false, allErrors: true });
ajv.addSchema(spec, 'spec');

function pointer(...parts: string[]): string {
  return parts.map((p) => p.replace(/~/g, '~0').replace(/\//g, '~1')).join('/');
}

/** The spec's path template that matches a concrete URL path, e.g. /v1/models/{name}. */
function template(path: string): string | undefined {
  return Object.keys(spec.paths).find((t) => new RegExp(`^${t.replace(/\{[^}]+\}/g, '[^/]+')}$`).test(path));
}

/**
 * @returns undefined if the response conforms, else why not.
 */
export function contractViolation(method: string, url: string, status: number, contentType: string, body: string): string | undefined {
  const path = url.split('?')[0]!;
  const t = template(path);
  if (!t) return status === 404 ? undefined : `${method} ${path}: no such path in openapi.yaml`;
  const op = spec.paths[t][method.toLowerCase()];
  if (!op) return `${method} ${t}: no such operation in openapi.yaml`;
  let response = op.responses[String(status)];
  if (!response) return `${method} ${t}: status ${status} is not documented`;
  let base = pointer('paths', t, method.toLowerCase(), 'responses', String(status));
  if (response.$ref) {
    base = response.$ref.slice(2);
    response = base.split('/').reduce((o: any, k: string) => o[k.replace(/~1/g, '/').replace(/~0/g, '~')], spec);
  }
  const type = contentType.split(';')[0]!.trim();
  if (!response.content?.[type]) return `${method} ${t} ${status}: content type ${type} is not documented`;
  if (type !== 'application/json') return undefined;
  const validate = ajv.getSchema(`spec#/${base}/${pointer('content', type, 'schema')}`)!;
  if (validate(JSON.parse(body))) return undefined;
  return `${method} ${t} ${status}: ${ajv.errorsText(validate.errors)}`;
}
