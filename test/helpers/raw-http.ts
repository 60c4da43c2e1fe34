/**
 * HTTP/1.1 over a bare socket, for requests no HTTP client would send
 * (broken framing, header bombs, slow bodies) and for reading exactly what
 * the server wrote back, whatever it was.
 */

import { once } from 'node:events';
import { connect } from 'node:net';

export interface RawResponse {
  /** 0 when the server closed (or reset) the connection without an answer. */
  status: number;
  /** Header lines, lower-cased. */
  headers: Record<string, string>;
  body: Buffer;
  ms: number;
  /** The socket's error, if it had one: EPIPE or ECONNRESET when the server reset the connection while the request was still being sent. */
  error?: string;
}

export interface RawOptions {
  /** Written every `everyMs` after the request, until the server closes the connection. */
  trickle?: Buffer;
  everyMs?: number;
  /** Half-close after writing (the server sees the end of the request stream). */
  end?: boolean;
  /** Keep this side open after the server's FIN (a client that does not notice the server is done). */
  halfOpen?: boolean;
  /** Give up (and destroy the socket) after this long, ms. */
  timeoutMs?: number;
}

/** Sends `request` over a new connection to 127.0.0.1:port; resolves once the server closes it (or the timeout). */
export async function rawRequest(port: number, request: string | Buffer | (string | Buffer)[], options: RawOptions = {}): Promise<RawResponse> {
  const socket = connect({ port, host: '127.0.0.1', allowHalfOpen: options.halfOpen ?? false });
  // A reset is an outcome to report, not a failure of the client.
  let error: string | undefined;
  socket.on('error', (err: NodeJS.ErrnoException) => (error ??= err.code ?? err.message));
  const closed = new Promise((resolve) => socket.on('close', resolve));
  await once(socket, 'connect');
  const started = performance.now();
  const chunks: Buffer[] = [];
  socket.on('data', (d: Buffer) => chunks.push(d));
  for (const piece of Array.isArray(request) ? request : [request]) socket.write(piece);
  if (options.end) socket.end();
  const trickle = options.trickle ? setInterval(() => socket.write(options.trickle!), options.everyMs ?? 200) : undefined;
  const timeout = setTimeout(() => socket.destroy(), options.timeoutMs ?? 60_000);
  await closed;
  clearInterval(trickle);
  clearTimeout(timeout);
  return { ...parseResponse(Buffer.concat(chunks)), ms: performance.now() - started, ...(error === undefined ? {} : { error }) };
}

/** The first response in `bytes`: status, headers and body (de-chunked); status 0 if there is none. */
export function parseResponse(bytes: Buffer): Omit<RawResponse, 'ms'> {
  const end = bytes.indexOf('\r\n\r\n');
  if (end < 0) return { status: 0, headers: {}, body: Buffer.alloc(0) };
  const [statusLine, ...lines] = bytes.subarray(0, end).toString('latin1').split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  let body = bytes.subarray(end + 4);
  if (headers['transfer-encoding'] === 'chunked') body = dechunk(body);
  else if (headers['content-length'] !== undefined) body = body.subarray(0, Number(headers['content-length']));
  return { status: Number(statusLine!.split(' ')[1]), headers, body };
}

function dechunk(bytes: Buffer): Buffer {
  const out: Buffer[] = [];
  let at = 0;
  for (;;) {
    const eol = bytes.indexOf('\r\n', at);
    if (eol < 0) break;
    const size = parseInt(bytes.subarray(at, eol).toString('latin1'), 16);
    if (!(size > 0)) break;
    out.push(bytes.subarray(eol + 2, eol + 2 + size));
    at = eol + 2 + size + 2;
  }
  return Buffer.concat(out);
}
