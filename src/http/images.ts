/**
 * The images of a request: the raw body (image/jpeg, image/png, image/webp),
 * or every multipart/form-data field named `image`, in order; and the
 * multipart text fields (e.g. `proposals`).
 */

import type { FastifyRequest } from 'fastify';

export const IMAGE_TYPES = Object.freeze(['image/jpeg', 'image/png', 'image/webp']);

/** The request carries no image: a 400 with code EMPTY_IMAGE. */
export class NoImageError extends Error {}

/** The multipart body cannot be parsed: a 400 with code MALFORMED_MULTIPART. */
export class MalformedMultipartError extends Error {}

export async function requestImages(request: FastifyRequest): Promise<{ images: Uint8Array[]; multipart: boolean; fields: Record<string, string> }> {
  const fields: Record<string, string> = {};
  if (request.isMultipart()) {
    const images: Uint8Array[] = [];
    try {
      for await (const part of request.parts()) {
        if (part.type === 'file' && part.fieldname === 'image') images.push(await part.toBuffer());
        else if (part.type === 'file') await part.toBuffer(); // drain fields we do not use
        else if (typeof part.value === 'string') fields[part.fieldname] = part.value;
      }
    } catch (err) {
      const e = err as { statusCode?: number; message: string };
      if (e.statusCode === 413) throw err; // over the size limit: the error handler's 413
      throw new MalformedMultipartError(`the multipart body cannot be parsed (${e.message}); send fields named "image" with the image bytes`);
    }
    if (images.length === 0) throw new NoImageError('the multipart body has no field named "image"');
    return { images, multipart: true, fields };
  }
  const body = request.body;
  return { images: [body instanceof Uint8Array ? body : new Uint8Array(0)], multipart: false, fields };
}
