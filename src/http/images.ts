/**
 * The images of a request: the raw body (image/jpeg, image/png, image/webp),
 * or every multipart/form-data field named `image`, in order; and the
 * multipart text fields (e.g. `proposals`).
 *
 * A raw body is bounded by fastify's bodyLimit. A multipart body is streamed,
 * so its bound is counted here: the bytes of all its parts together (files and
 * text fields) may not pass the same limit, and the part counts are capped by
 * MULTIPART_LIMITS.
 */

import type { FastifyRequest } from 'fastify';

export const IMAGE_TYPES = Object.freeze(['image/jpeg', 'image/png', 'image/webp']);

/** Caps of one multipart body, besides its total bytes: images, text fields, parts in all, bytes of one text field. */
export const MULTIPART_LIMITS = Object.freeze({ files: 64, fields: 16, parts: 80, fieldBytes: 1024 * 1024 });

/** The request carries no image: a 400 with code EMPTY_IMAGE. */
export class NoImageError extends Error {}

/** The multipart body cannot be parsed: a 400 with code MALFORMED_MULTIPART. */
export class MalformedMultipartError extends Error {}

/** The body is over a size or count limit: a 413 with code BODY_TOO_LARGE. */
export class BodyTooLargeError extends Error {}

/** @fastify/multipart's limit errors (all status 413), in words a client can act on. */
const MULTIPART_LIMIT_ERRORS: Readonly<Record<string, string>> = Object.freeze({
  FST_FILES_LIMIT: `the multipart body has more than ${MULTIPART_LIMITS.files} files; send at most ${MULTIPART_LIMITS.files} images per request`,
  FST_FIELDS_LIMIT: `the multipart body has more than ${MULTIPART_LIMITS.fields} text fields; at most ${MULTIPART_LIMITS.fields} are allowed`,
  FST_PARTS_LIMIT: `the multipart body has more than ${MULTIPART_LIMITS.parts} parts; at most ${MULTIPART_LIMITS.parts} are allowed`,
});

/** @param maxBytes the most bytes the request's images and fields may have together. */
export async function requestImages(request: FastifyRequest, maxBytes: number): Promise<{ images: Uint8Array[]; multipart: boolean; fields: Record<string, string> }> {
  const fields: Record<string, string> = {};
  if (!request.isMultipart()) {
    const body = request.body;
    return { images: [body instanceof Uint8Array ? body : new Uint8Array(0)], multipart: false, fields };
  }
  const images: Uint8Array[] = [];
  const tooLarge = () => new BodyTooLargeError(`the multipart body is over ${maxBytes} bytes in all (its images and fields together); send fewer or smaller images`);
  let total = 0;
  try {
    for await (const part of request.parts()) {
      if (part.type === 'file') {
        // Counted as it streams, so a body over the limit is refused without being held.
        const chunks: Buffer[] = [];
        for await (const chunk of part.file as AsyncIterable<Buffer>) {
          total += chunk.length;
          if (total > maxBytes) throw tooLarge();
          if (part.fieldname === 'image') chunks.push(chunk);
        }
        if (part.fieldname === 'image') images.push(Buffer.concat(chunks));
      } else {
        if (part.valueTruncated) throw new BodyTooLargeError(`the multipart field ${JSON.stringify(part.fieldname)} is over ${MULTIPART_LIMITS.fieldBytes} bytes`);
        const value = typeof part.value === 'string' ? part.value : String(part.value);
        total += Buffer.byteLength(value) + Buffer.byteLength(part.fieldname);
        if (total > maxBytes) throw tooLarge();
        fields[part.fieldname] = value;
      }
    }
  } catch (err) {
    if (err instanceof BodyTooLargeError) throw err;
    const e = err as { code?: string; statusCode?: number; message: string };
    const limit = e.code === undefined ? undefined : MULTIPART_LIMIT_ERRORS[e.code];
    if (limit !== undefined) throw new BodyTooLargeError(limit);
    if (e.code === 'FST_REQ_FILE_TOO_LARGE') throw tooLarge();
    throw new MalformedMultipartError(`the multipart body cannot be parsed (${e.message}); send fields named "image" with the image bytes`);
  }
  if (images.length === 0) throw new NoImageError('the multipart body has no field named "image"');
  return { images, multipart: true, fields };
}
