/**
 * rcnn-serve as a library.
 *
 *   import { Detector } from 'rcnn-serve';
 *   const detector = await Detector.load('shapes-vgg') // or a package folder;
 *   const result = await detector.detect('photo.jpg', { scoreThreshold: 0.5 });
 *   const why = await detector.explain('photo.jpg', { top: 1 }); // occlusion maps
 *   await detector.close();
 */
export {
  Detector,
  PIPELINES,
  type Detection,
  type DetectionResult,
  type DetectOptions,
  type DetectorOptions,
  type ExplainOptions,
  type ExplainResult,
  type FeatureViewResult,
  type PipelineName,
} from './detector.js';
export type { ExplainTarget, OcclusionMap } from './explain.js';
export type { Provenance, RegionSource } from './core/provenance.js';
export { DetectError, ERROR_CODES, type ErrorCode } from './errors.js';
export { RegionProposer, type ProposalResult, type ProposeOptions } from './proposals.js';
export { DEFAULT_MODEL, SHIPPED_MODELS_DIR } from './model/package.js';
export type { ModelManifest } from './model/manifest-schema.js';
export { EXECUTION_PROVIDERS, type Device } from './runtime/device.js';
