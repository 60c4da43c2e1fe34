/** A query string that fails its route's schema, said as the library says a bad option. */

import type { FastifyRequest } from 'fastify';
import { allowedValues, checkOption, OPTIONS, type OptionSpec } from '../options.js';
import { didYouMean } from '../suggest.js';

/** The part of an Ajv error this reads. */
export interface QueryError {
  keyword: string;
  instancePath: string;
  params: { additionalProperty?: string };
}

/**
 * A query string's first problem as the library words it: the option, the value sent and what is
 * allowed (the option table's), or an unknown option with the route's and the nearest one.
 */
export function queryProblem(request: FastifyRequest, errors: readonly QueryError[]): string | undefined {
  const [e] = errors;
  if (!e) return undefined;
  const query = request.query as Record<string, unknown>;
  const names = Object.keys((request.routeOptions.schema?.querystring as { properties?: object } | undefined)?.properties ?? {});
  if (e.keyword === 'additionalProperties' && e.params.additionalProperty !== undefined) {
    const name = e.params.additionalProperty;
    return `${name} is not an option of ${request.routeOptions.url}${didYouMean(name, names)}; allowed: ${names.join(', ')}`;
  }
  const name = e.instancePath.slice(1);
  const spec = (OPTIONS as Record<string, OptionSpec>)[name];
  if (!spec) return undefined;
  // Ajv coerces "7" to 7, but leaves "2.5" a string where an integer is wanted: show a number as one.
  const raw = query[name];
  const numeric = (spec.type === 'number' || spec.type === 'integer') && typeof raw === 'string' && raw.trim() !== '' && Number.isFinite(Number(raw));
  const value = numeric ? Number(raw) : raw;
  try {
    checkOption(name, spec, value);
  } catch (err) {
    return (err as Error).message; // the library's own words for the same value
  }
  return `${name} is ${JSON.stringify(value)}; allowed: ${allowedValues(spec)}`;
}
