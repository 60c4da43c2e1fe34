/**
 * Errors that Node's HTTP parser or fastify's router raise before any route
 * runs (bad framing, headers over the limit, a request not received in time,
 * an Expect header other than 100-continue, a bad or over-long URL), answered
 * in the one envelope `{ code, message, requestId }` like every other error.
 * Node and fastify would otherwise answer these in bodies of their own
 * (`{"error", "message", "statusCode"}`, or none at all).
 */

import { randomUUID } from 'node:crypto';
import { STATUS_CODES, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyBaseLogger, FastifyReply, FastifyRequest } from 'fastify';
import { HTTP_ERRORS, type ErrorBody, type HttpErrorCode } from './error-catalog.js';

/** The envelope of a protocol error, under an id of its own (there is no fastify request to take one from). */
function envelope(code: HttpErrorCode, message: string = HTTP_ERRORS[code].message): { status: number; body: ErrorBody } {
  return { status: HTTP_ERRORS[code].status, body: { code, message, requestId: randomUUID() } };
}

/** Node's parser error codes: which of ours each one is. */
function codeOfClientError(err: NodeJS.ErrnoException): HttpErrorCode {
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') return 'REQUEST_TIMEOUT';
  if (err.code === 'HPE_HEADER_OVERFLOW') return 'HEADERS_TOO_LARGE';
  return 'BAD_REQUEST';
}

/**
 * fastify's `clientErrorHandler`: the socket has no usable request on it, so
 * answer on the raw socket, with `Connection: close` (the parser cannot go on
 * with this connection, and a client that knows it will not reuse it), then
 * close it once the answer is written.
 */
export function clientErrorHandler(log: FastifyBaseLogger): (err: NodeJS.ErrnoException, socket: Socket) => void {
  return (err, socket) => {
    if (err.code === 'ECONNRESET' || socket.destroyed) return;
    const code = codeOfClientError(err);
    const { status, body } = envelope(code, code === 'BAD_REQUEST' ? `the request is not valid HTTP/1.1 (${err.code ?? 'parse error'})` : undefined);
    log.info({ requestId: body.requestId, status, code, parserError: err.code }, 'client error');
    // As Node's own handler: write only where no response of this socket has begun.
    const inFlight = (socket as Socket & { _httpMessage?: ServerResponse })._httpMessage;
    if (!socket.writable || (inFlight && inFlight.headersSent)) {
      socket.destroy();
      return;
    }
    const json = JSON.stringify(body);
    const head = `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(json)}\r\nConnection: close\r\n\r\n`;
    socket.end(head + json, () => socket.destroy());
  };
}

/** An Expect header other than 100-continue: 417 in the envelope (Node's own answer has no body). */
export function answerFailedExpectation(server: Server, log: FastifyBaseLogger): void {
  server.on('checkExpectation', (req: IncomingMessage, res: ServerResponse) => {
    const { status, body } = envelope('EXPECTATION_FAILED', `Expect: ${JSON.stringify(String(req.headers.expect).slice(0, 100))} is not supported; the only Expect value supported is 100-continue`);
    log.info({ requestId: body.requestId, status, code: body.code }, 'client error');
    const json = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(json), connection: 'close' }).end(json);
  });
}

/** fastify's `frameworkErrors`: the router's errors (a URL that does not decode, a path segment over the limit). */
export function frameworkErrors(maxParamLength: number) {
  return (err: { code?: string }, request: FastifyRequest, reply: FastifyReply): void => {
    const [code, message]: [HttpErrorCode, string] =
      err.code === 'FST_ERR_MAX_PARAM_LENGTH'
        ? ['URI_TOO_LONG', `a path segment (a model name, say) is over ${maxParamLength} characters`]
        : err.code === 'FST_ERR_BAD_URL'
          ? ['BAD_REQUEST', 'the URL cannot be decoded; percent-encode it as UTF-8']
          : ['INTERNAL_ERROR', HTTP_ERRORS.INTERNAL_ERROR.message];
    if (code === 'INTERNAL_ERROR') request.log.error({ err }, 'router failed');
    void reply.code(HTTP_ERRORS[code].status).send({ code, message, requestId: String(request.id) });
  };
}
