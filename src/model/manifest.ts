/**
 * Parse and validate model.json, with errors that name the field and the value.
 */

import { Ajv, type ErrorObject } from 'ajv';
import { DetectError } from '../errors.js';
import { MANIFEST_SCHEMA, type ModelManifest } from './manifest-schema.js';

const ajv = new Ajv({ allErrors: true, strict: true });
const validate = ajv.compile<ModelManifest>(MANIFEST_SCHEMA);

/** `/pipelines/faster-rcnn/rpn` -> `pipelines.faster-rcnn.rpn`; the root is `(root)`. */
function fieldName(pointer: string): string {
  return pointer === '' ? '(root)' : pointer.slice(1).split('/').map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~')).join('.');
}

function valueAt(doc: unknown, pointer: string): unknown {
  let v = doc;
  for (const part of pointer.split('/').slice(1)) v = (v as Record<string, unknown> | undefined)?.[part.replace(/~1/g, '/').replace(/~0/g, '~')];
  return v;
}

function show(v: unknown): string {
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

function describe(e: ErrorObject, doc: unknown): string {
  const field = fieldName(e.instancePath);
  switch (e.keyword) {
    case 'required':
      return `${field === '(root)' ? '' : `${field}.`}${(e.params as { missingProperty: string }).missingProperty} is missing`;
    case 'additionalProperties':
      return `${field === '(root)' ? '' : `${field}.`}${(e.params as { additionalProperty: string }).additionalProperty} is not a known field`;
    case 'enum':
      return `${field} is ${show(valueAt(doc, e.instancePath))}; allowed: ${(e.params as { allowedValues: unknown[] }).allowedValues.map(show).join(', ')}`;
    case 'const':
      return `${field} is ${show(valueAt(doc, e.instancePath))}; expected ${show((e.params as { allowedValue: unknown }).allowedValue)}`;
    default:
      return `${field} ${e.message ?? 'is invalid'} (got ${show(valueAt(doc, e.instancePath))})`;
  }
}

/**
 * Validate a parsed model.json.
 * @param doc the parsed JSON.
 * @param where the file, for messages.
 * @throws DetectError INVALID_MODEL listing every problem found.
 */
export function parseManifest(doc: unknown, where: string): ModelManifest {
  if (!validate(doc)) {
    // oneOf failures repeat each branch's complaints: keep the branch whose generator matches.
    const errors = (validate.errors ?? []).filter((e) => e.keyword !== 'oneOf' && !(e.keyword === 'const' && e.instancePath.endsWith('/generator')));
    const messages = [...new Set((errors.length ? errors : validate.errors ?? []).map((e) => describe(e, doc)))];
    throw new DetectError('INVALID_MODEL', `${where}: ${messages.join('; ')}`);
  }
  const m = doc;
  // Cross-field rules a schema cannot say.
  const problems: string[] = [];
  const features = new Set(m.backbone.features.map((f) => f.name));
  const frcnn = m.pipelines['faster-rcnn'];
  if (frcnn) {
    for (const f of [...frcnn.rpn.features, ...frcnn.roiOp.features]) {
      if (!features.has(f)) problems.push(`feature ${show(f)} is not one of backbone.features (${[...features].join(', ')})`);
    }
    const levels = frcnn.rpn.features.length;
    const h = frcnn.rpn.head;
    if (h.inputs.length !== levels || h.objectness.length !== levels || h.deltas.length !== levels) {
      problems.push(`pipelines.faster-rcnn.rpn.head needs one input, objectness and deltas name per RPN feature (${levels})`);
    }
    const a = frcnn.rpn.anchors;
    const anchorLevels = a.generator === 'torchvision' ? a.sizes.length : 1;
    if (anchorLevels !== levels) problems.push(`pipelines.faster-rcnn.rpn.anchors has ${anchorLevels} levels but rpn.features has ${levels}`);
    if (a.generator === 'torchvision' && a.aspectRatios.length !== a.sizes.length) {
      problems.push(`pipelines.faster-rcnn.rpn.anchors.aspectRatios has ${a.aspectRatios.length} levels but sizes has ${a.sizes.length}`);
    }
    frcnn.testScales?.forEach((s, i) => {
      if (s.minSize > s.maxSize) problems.push(`pipelines.faster-rcnn.testScales.${i}.minSize (${s.minSize}) is larger than its maxSize (${s.maxSize})`);
      if ((s.minObjectSize ?? 0) >= (s.maxObjectSize ?? Infinity)) {
        problems.push(`pipelines.faster-rcnn.testScales.${i} keeps no object size: minObjectSize (${s.minObjectSize}) is not below maxObjectSize (${s.maxObjectSize})`);
      }
    });
  }
  const fast = m.pipelines['fast-rcnn'];
  if (fast && !features.has(fast.roiPool.feature)) problems.push(`pipelines.fast-rcnn.roiPool.feature ${show(fast.roiPool.feature)} is not one of backbone.features (${[...features].join(', ')})`);
  const rcnn = m.pipelines.rcnn;
  if (rcnn && !features.has(rcnn.feature)) problems.push(`pipelines.rcnn.feature ${show(rcnn.feature)} is not one of backbone.features (${[...features].join(', ')})`);
  if (rcnn && 2 * rcnn.warp.context >= Math.min(...rcnn.warp.size)) problems.push(`pipelines.rcnn.warp.context (${rcnn.warp.context}) leaves no room for the region in a ${rcnn.warp.size.join('x')} crop`);
  if (m.input.minSize > m.input.maxSize) problems.push(`input.minSize (${m.input.minSize}) is larger than input.maxSize (${m.input.maxSize})`);
  if (problems.length) throw new DetectError('INVALID_MODEL', `${where}: ${problems.join('; ')}`);
  return m;
}
