/** An 8-bit RGB image: height*width*3 bytes, row-major, channels interleaved (HWC). */
export interface RgbImage {
  data: Uint8Array;
  width: number;
  height: number;
}
