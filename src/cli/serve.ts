/** `rcnn-serve serve`: the HTTP service, configured by environment variables, until a stop signal. */

import { configFromEnv, ConfigError } from '../config/env.js';
import { serve, StartError } from '../http/server.js';
import type { CliIo } from './flags.js';
import { onStopRequest } from './stop-signals.js';

export async function serveCommand(io: CliIo): Promise<number> {
  let config;
  try {
    config = configFromEnv();
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    io.err(`error: CONFIG: ${err.message}`);
    return 2;
  }
  let server: Awaited<ReturnType<typeof serve>>;
  try {
    server = await serve(config);
  } catch (err) {
    if (!(err instanceof StartError)) throw err;
    io.err(`error: START: ${err.message}`);
    return 1;
  }
  const why = await new Promise<string>((resolve) => onStopRequest(resolve));
  io.err(`serve: stopping (${why}): finishing the requests in flight`);
  await server.close();
  return 0;
}
