/**
 * HTTP status of every error code, and the body every 4xx/5xx carries:
 * `{ code, message, requestId }`. Details of a 5xx stay in the log.
 */

import type { ErrorCode } from '../errors.js';

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
  INVALID_DEVICE: 500,
  INFERENCE_FAILED: 500,
});

/** Codes of errors raised by the HTTP layer itself: status and default message. */
export const HTTP_ERRORS = Object.freeze({
  UNSUPPORTED_MEDIA_TYPE: { status: 415, message: 'send the image as the body with Content-Type image/jpeg, image/png or image/webp, or as multipart/form-data field "image"' },
  BODY_TOO_LARGE: { status: 413, message: 'the request body is over the limit' },
  MALFORMED_MULTIPART: { status: 400, message: 'the multipart body cannot be parsed' },
  BAD_REQUEST: { status: 400, message: 'the request is malformed' },
  UNAUTHORIZED: { status: 401, message: 'this route needs the API key: send Authorization: Bearer KEY or x-api-key: KEY' },
  NOT_FOUND: { status: 404, message: 'no such route' },
  BUSY: { status: 503, message: 'all workers are busy and the queue is full; retry after the time in Retry-After' },
  DEADLINE_EXCEEDED: { status: 504, message: 'the request took longer than its deadline' },
  INTERNAL_ERROR: { status: 500, message: 'internal error; the details are in the server log under this request id' },
});

export type HttpErrorCode = keyof typeof HTTP_ERRORS;

export interface ErrorBody {
  code: string;
  message: string;
  requestId: string;
}
