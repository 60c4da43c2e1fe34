import type { RgbImage } from '../image/decode.js';
import type { RawDetections } from './postprocess.js';
import type { Stopwatch } from './stopwatch.js';

/** Per-request overrides of a model's post-processing defaults. */
export interface RunOptions {
  scoreThreshold?: number;
  nmsThreshold?: number;
  maxDetections?: number;
}

/** One R-CNN generation bound to a loaded model: upright RGB pixels in, detections in original pixels out. */
export interface PipelineRunner {
  /** Stage times (ms) are added to `clock`. */
  run(image: RgbImage, options: RunOptions, clock: Stopwatch): Promise<RawDetections>;
}
