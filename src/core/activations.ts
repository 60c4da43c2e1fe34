/**
 * A layer's activation maps as feature views show them (Zeiler & Fergus
 * 2014): the channels whose strongest activation is largest, each map cropped
 * to the part over the image.
 */

export interface ChannelView {
  index: number;
  /** The channel's maximum and mean activation over the cropped map. */
  max: number;
  mean: number;
  /** The cropped map, rows x cols, row by row. */
  map: number[];
}

/**
 * @param chw one image's C x H x W activations.
 * @param rows, cols the part of each map to read: its top-left rows x cols (the image, not its padding).
 * @param k how many channels.
 * @returns the k channels with the largest maximum, strongest first (ties: the lower index first).
 */
export function strongestChannels(chw: Float32Array, channels: number, height: number, width: number, rows: number, cols: number, k: number): ChannelView[] {
  const stats = Array.from({ length: channels }, (_, index) => {
    let max = -Infinity, sum = 0;
    for (let y = 0; y < rows; y++) {
      for (let i = (index * height + y) * width, end = i + cols; i < end; i++) {
        max = Math.max(max, chw[i]!);
        sum += chw[i]!;
      }
    }
    return { index, max, mean: sum / (rows * cols) };
  });
  return stats
    .sort((a, b) => b.max - a.max || a.index - b.index)
    .slice(0, k)
    .map((s) => ({ ...s, map: Array.from({ length: rows * cols }, (_, i) => chw[(s.index * height + Math.floor(i / cols)) * width + (i % cols)]!) }));
}
