/**
 * Draw detections on an image: boxes, labels and scores as an SVG overlay
 * composited by sharp (libvips does the work off the JavaScript thread).
 */

import sharp from 'sharp';

export interface DrawnBox {
  /** x1, y1, x2, y2 in the upright image's pixels. */
  box: readonly [number, number, number, number];
  label: string;
  classId: number;
  score: number;
}

/** Distinct, readable colours; class c gets PALETTE[c % length]. */
const PALETTE = ['#e6194b', '#3cb44b', '#4363d8', '#f58231', '#911eb4', '#42d4f4', '#f032e6', '#bfef45', '#fabed4', '#469990', '#dcbeff', '#9a6324'];

function escapeXml(s: string): string {
  return s.replace(/[<>&'"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[c]!);
}

/** The size of an encoded image once upright (EXIF orientations 5-8 swap width and height). */
export async function uprightSize(bytes: Uint8Array): Promise<{ width: number; height: number }> {
  const meta = await sharp(bytes).metadata();
  const swap = (meta.orientation ?? 1) >= 5;
  return { width: (swap ? meta.height : meta.width) ?? 1, height: (swap ? meta.width : meta.height) ?? 1 };
}

/** The boxes, labels and scores as an SVG the size of the image. */
export function boxesSvg(boxes: readonly DrawnBox[], width: number, height: number): Buffer {
  const stroke = Math.max(2, Math.round(Math.min(width, height) / 200));
  const font = Math.max(11, Math.round(Math.min(width, height) / 40));
  const shapes = boxes.map((d) => {
    const [x1, y1, x2, y2] = d.box;
    const colour = PALETTE[d.classId % PALETTE.length];
    const text = escapeXml(`${d.label} ${d.score.toFixed(2)}`);
    const ty = y1 > font + 4 ? y1 - 4 : y1 + font + 2;
    return (
      `<rect x="${x1.toFixed(1)}" y="${y1.toFixed(1)}" width="${(x2 - x1).toFixed(1)}" height="${(y2 - y1).toFixed(1)}" fill="none" stroke="${colour}" stroke-width="${stroke}"/>` +
      `<text x="${(x1 + 2).toFixed(1)}" y="${ty.toFixed(1)}" font-family="sans-serif" font-size="${font}" fill="${colour}" stroke="white" stroke-width="0.6" paint-order="stroke">${text}</text>`
    );
  });
  return Buffer.from(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">${shapes.join('')}</svg>`);
}

/**
 * @param bytes the encoded image (EXIF orientation is applied, as for detection).
 * @param format output encoding.
 * @returns the encoded image with the boxes drawn.
 */
export async function drawDetections(bytes: Uint8Array, boxes: readonly DrawnBox[], format: 'png' | 'jpeg'): Promise<Buffer> {
  const { width, height } = await uprightSize(bytes);
  const out = sharp(bytes).rotate().composite([{ input: boxesSvg(boxes, width, height), top: 0, left: 0 }]);
  return format === 'png' ? out.png().toBuffer() : out.jpeg({ quality: 90 }).toBuffer();
}
