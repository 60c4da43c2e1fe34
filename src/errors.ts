/**
 * The error catalogue: every failure a user can act on has a stable code and a
 * message that says what was wrong, the offending value and what is allowed.
 * The CLI prints `code: message`; the HTTP layer maps codes to statuses.
 */

export const ERROR_CODES = Object.freeze({
  EMPTY_IMAGE: 'the input has no bytes',
  IMAGE_TOO_LARGE: 'the input is over the byte or pixel limit',
  UNSUPPORTED_FORMAT: 'the input is not a JPEG, PNG or WebP image',
  CORRUPT_IMAGE: 'the image header is readable but its pixels are not',
  FILE_NOT_FOUND: 'an input path does not exist or cannot be read',
  INVALID_MODEL: 'a model package is missing a file or its model.json is invalid',
  MODEL_NOT_FOUND: 'no model package has the given name or path',
  INVALID_OPTION: 'an option has a value outside what is allowed',
  UNSUPPORTED_PIPELINE: 'the model has no heads for the requested pipeline',
  UNSUPPORTED_PRECISION: 'the model has no graphs in the requested precision',
  INVALID_DEVICE: 'the execution device is not one of the supported ones',
  DEVICE_UNAVAILABLE: 'the requested device cannot be used on this host, and falling back to the CPU is refused',
  INFERENCE_FAILED: 'ONNX Runtime failed while running a graph',
  FEATURE_VIEWS_OFF: 'feature views are off: the model was loaded without its layers exposed (FEATURE_VIEWS=off)',
} as const);

export type ErrorCode = keyof typeof ERROR_CODES;

/** An error a user can act on: a stable code, and a message that says what to do. */
export class CodedError<Code extends string = string> extends Error {
  readonly code: Code;
  constructor(code: Code, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

export class DetectError extends CodedError<ErrorCode> {}

/** Codes of `rcnn-serve models quantize`: the command line's only (no route quantizes). */
export const QUANTIZE_ERROR_CODES = Object.freeze({
  ALREADY_QUANTIZED: 'the package or graph is int8 already',
  UNSUPPORTED_OP: 'a graph has an op the quantizer does not handle',
  UNSUPPORTED_GRAPH: 'a graph cannot be quantized as it is (opset, external weights)',
  CALIBRATION_IMAGES: 'too few calibration images, or one that cannot be read',
  OUTPUT_EXISTS: 'the output folder exists already',
} as const);

export type QuantizeErrorCode = keyof typeof QUANTIZE_ERROR_CODES;

export class QuantizeError extends CodedError<QuantizeErrorCode> {}
