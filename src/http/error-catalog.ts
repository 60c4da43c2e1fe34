/**
 * HTTP status of every error code, and the body every 4xx/5xx carries:
 * `{ code, message, requestId }`. Details of a 5xx stay in the log: a 5xx body
 * carries its code's public message (publicMessage5xx), never the error's own
 * text (which may name files, graph nodes or stack frames).
 */

import { ERROR_CODES, type ErrorCode } from '../errors.js';

export const STATUS_OF: Readonly<Record<ErrorCode, number>> = Object.freeze({
  EMPTY_IMAGE: 400,
  IMAGE_TOO_LARGE: 413,
  UNSUPPORTED_FORMAT: 415,
  CORRUPT_IMAGE: 422,
  FILE_NOT_FOUND: 400,
  INVALID_MODEL: 500,
  MODEL_NOT_FOUND: 404,
  INVALID_OPTION: 400,
  UNSUPPORTED_PIPELINE: 400,
  UNSUPPORTED_PRECISION: 400,
  INVALID_DEVICE: 500,
  DEVICE_UNAVAILABLE: 503,
  INFERENCE_FAILED: 500,
  FEATURE_VIEWS_OFF: 501,
});

/** Codes of errors raised by the HTTP layer itself: status and default message. */
export const HTTP_ERRORS = Object.freeze({
  UNSUPPORTED_MEDIA_TYPE: { status: 415, message: 'send the image as the body with Content-Type image/jpeg, image/png or image/webp, or as multipart/form-data field "image"' },
  BODY_TOO_LARGE: { status: 413, message: 'the request body is over the limit' },
  MALFORMED_MULTIPART: { status: 400, message: 'the multipart body cannot be parsed' },
  BAD_REQUEST: { status: 400, message: 'the request is malformed' },
  UNAUTHORIZED: { status: 401, message: 'this route needs the API key: send Authorization: Bearer KEY or x-api-key: KEY' },
  NOT_FOUND: { status: 404, message: 'no such route' },
  REQUEST_TIMEOUT: { status: 408, message: 'the request (headers and body) was not received in time; send it faster, or a smaller image' },
  URI_TOO_LONG: { status: 414, message: 'a path segment is too long' },
  EXPECTATION_FAILED: { status: 417, message: 'the only Expect value supported is 100-continue' },
  HEADERS_TOO_LARGE: { status: 431, message: 'the request headers are over the limit (16 KiB in all)' },
  BUSY: { status: 503, message: 'all workers are busy and the queue is full; retry after the time in Retry-After' },
  NOT_READY: { status: 503, message: 'the server is not ready: models are loading or it is shutting down; retry after the time in Retry-After' },
  SHUTTING_DOWN: { status: 503, message: 'the server is shutting down; retry after the time in Retry-After, on another replica if there is one' },
  WORKER_LOST: { status: 503, message: 'the worker running this request died (over its heap limit, or stopped) and was replaced; retry after the time in Retry-After' },
  DEADLINE_EXCEEDED: { status: 504, message: 'the request took longer than its deadline' },
  INTERNAL_ERROR: { status: 500, message: 'internal error; the details are in the server log under this request id' },
});

export type HttpErrorCode = keyof typeof HTTP_ERRORS;

/** What a 5xx body says for a DetectError's code: what failed, never how (that is in the log under the request id). */
export function publicMessage5xx(code: ErrorCode): string {
  return `${ERROR_CODES[code]}; the details are in the server log under this request id`;
}

export interface ErrorBody {
  code: string;
  message: string;
  requestId: string;
}
