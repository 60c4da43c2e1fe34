import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { drawDetections } from '../../../src/image/draw.js';

const GREY = 128;
/** Class 2's colour in the palette, #4363d8. */
const BLUE = [0x43, 0x63, 0xd8];

async function pixels(png: Buffer) {
  const { data, info } = await sharp(png).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, at: (x: number, y: number) => Array.from(data.subarray(3 * (y * info.width + x), 3 * (y * info.width + x) + 3)) };
}

describe('drawDetections', () => {
  // A flat grey image looks the same in every orientation, so each orientation must give the same drawing: the
  // box in the upright frame, on an upright canvas of 200 x 150.
  for (const orientation of [1, 3, 5, 6, 7, 8]) {
    it(`draws the box's edges in its class colour where the box is, and nothing inside or below it (EXIF ${orientation})`, async () => {
      const [sw, sh] = orientation >= 5 ? [150, 200] : [200, 150];
      const stored = await sharp({ create: { width: sw, height: sh, channels: 3, background: { r: GREY, g: GREY, b: GREY } } })
        .png()
        .withMetadata({ orientation })
        .toBuffer();
      const drawn = await pixels(await drawDetections(stored, [{ box: [40, 30, 160, 120], label: 'square', classId: 2, score: 0.9 }], 'png'));
      expect([drawn.width, drawn.height]).toEqual([200, 150]);
      // The 2-pixel stroke is centred on each edge: the pixels either side of it are fully covered.
      for (const [x, y] of [[100, 30], [100, 29], [40, 75], [39, 75], [160, 75], [159, 75], [100, 120], [100, 119]] as const) {
        expect({ x, y, rgb: drawn.at(x, y) }).toEqual({ x, y, rgb: BLUE });
      }
      const grey = [GREY, GREY, GREY];
      // Inside the box, off its edges and below its label (which sits above the top edge): untouched.
      for (let y = 33; y < 118; y += 3) for (let x = 43; x < 158; x += 3) expect(drawn.at(x, y)).toEqual(grey);
      // Outside: left, right and below the box untouched; the label is drawn above it, in the box's colour.
      for (const [x, y] of [[10, 75], [190, 75], [100, 140], [10, 10], [190, 10]] as const) expect(drawn.at(x, y)).toEqual(grey);
      let labelPixels = 0;
      for (let y = 10; y < 28; y++) for (let x = 42; x < 130; x++) if (drawn.at(x, y).join() !== grey.join()) labelPixels++;
      expect(labelPixels).toBeGreaterThan(30);
    });
  }
});
