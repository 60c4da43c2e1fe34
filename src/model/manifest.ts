/**
 * Parse and validate model.json, with errors that name the field and the value.
 */

import { Ajv, type ErrorObject } from 'ajv';
import { DetectError } from '../errors.js';
import { MANIFEST_SCHEMA, type ModelManifest, type Precision } from './manifest-schema.js';

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

/** The branch of an anyOf an error belongs to: its schema path up to `anyOf/N`. */
const branchOf = (e: ErrorObject) => /^.*\/anyOf\/\d+/.exec(e.schemaPath)?.[0];

/**
 * An anyOf (the anchor generators) fails with every branch's complaints:
 * keep those of the branch whose `generator` matches; where none matches,
 * one line naming the generator and the known ones.
 */
function relevantErrors(errors: readonly ErrorObject[]): ErrorObject[] {
  const isGenerator = (e: ErrorObject) => e.keyword === 'const' && e.instancePath.endsWith('/generator');
  const wrong = new Set(errors.filter(isGenerator).map(branchOf));
  const kept = errors.filter((e) => e.keyword !== 'anyOf' && !wrong.has(branchOf(e)));
  const within = (k: ErrorObject, e: ErrorObject) => k.instancePath === e.instancePath || k.instancePath.startsWith(`${e.instancePath}/`);
  const unknown = errors.filter((e) => e.keyword === 'anyOf' && !kept.some((k) => within(k, e)));
  return [
    ...kept,
    ...unknown.map((e) => {
      const allowedValues = errors.filter((g) => isGenerator(g) && g.instancePath === `${e.instancePath}/generator`).map((g) => (g.params as { allowedValue: unknown }).allowedValue);
      return { ...e, keyword: 'enum', instancePath: `${e.instancePath}/generator`, params: { allowedValues } };
    }),
  ];
}

/**
 * Validate a parsed model.json.
 * @param doc the parsed JSON.
 * @param where the file, for messages.
 * @throws DetectError INVALID_MODEL listing every problem found.
 */
export function parseManifest(doc: unknown, where: string): ModelManifest {
  if (!validate(doc)) {
    const messages = [...new Set(relevantErrors(validate.errors ?? []).map((e) => describe(e, doc)))];
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
  if (m.precision === 'int8' && !m.quantization) problems.push('precision is int8 but quantization (how the graphs were quantized) is missing');
  if (m.precision === 'fp16' && m.quantization) problems.push('precision is fp16 but quantization (int8 ranges, which apply to fp32 graphs) is present');
  if (m.quantization) {
    const graphs = graphsOf(m);
    for (const file of Object.keys(m.quantization.graphs)) if (!graphs.has(file)) problems.push(`quantization.graphs names ${show(file)}, which is not a graph of this package (${[...graphs.keys()].join(', ')})`);
    for (const [file, g] of Object.entries(m.quantization.graphs)) {
      for (const [tensor, [lo, hi]] of Object.entries(g.ranges)) if (!(lo <= hi)) problems.push(`quantization.graphs.${file}.ranges.${tensor} is [${lo}, ${hi}]; the minimum must not exceed the maximum`);
    }
  }
  if (m.input.minSize > m.input.maxSize) problems.push(`input.minSize (${m.input.minSize}) is larger than input.maxSize (${m.input.maxSize})`);
  if (problems.length) throw new DetectError('INVALID_MODEL', `${where}: ${problems.join('; ')}`);
  return m;
}

/**
 * Every graph a manifest names, backbone first, with the field that names it
 * and the input and output names it must have.
 */
export function graphsOf(m: Pick<ModelManifest, 'backbone' | 'pipelines'>): Map<string, { field: string; inputs: string[]; outputs: string[] }> {
  const graphs = new Map<string, { field: string; inputs: string[]; outputs: string[] }>();
  const need = (file: string, field: string, inputs: string[], outputs: string[]) => {
    const g = graphs.get(file) ?? { field, inputs: [], outputs: [] };
    g.inputs.push(...inputs);
    g.outputs.push(...outputs);
    graphs.set(file, g);
  };
  need(m.backbone.file, 'backbone.file', [m.backbone.input], m.backbone.features.map((f) => f.output));
  const f = m.pipelines['faster-rcnn'];
  if (f) {
    need(f.rpn.head.file, 'pipelines.faster-rcnn.rpn.head.file', f.rpn.head.inputs, [...f.rpn.head.objectness, ...f.rpn.head.deltas]);
    need(f.boxHead.file, 'pipelines.faster-rcnn.boxHead.file', [f.boxHead.input], [f.boxHead.classLogits, f.boxHead.boxDeltas]);
  }
  for (const [pipeline, spec] of [['fast-rcnn', m.pipelines['fast-rcnn']], ['rcnn', m.pipelines.rcnn]] as const) {
    if (spec) need(spec.head.file, `pipelines.${pipeline}.head.file`, [spec.head.input], [spec.head.classLogits, spec.head.boxDeltas]);
  }
  return graphs;
}

/**
 * The precisions a package serves: its stored graphs', and int8 as well
 * when it carries calibrated ranges for fp32 graphs. The first is the default.
 */
export function precisionsOf(m: ModelManifest): Precision[] {
  const stored = m.precision ?? 'fp32';
  return stored === 'fp32' && m.quantization ? ['fp32', 'int8'] : [stored];
}

/** @throws DetectError UNSUPPORTED_PRECISION, saying what the package serves, for a precision it lacks. */
export function checkPrecision(m: ModelManifest, precision: Precision): void {
  const precisions = precisionsOf(m);
  if (precisions.includes(precision)) return;
  const how = precision === 'fp32' ? '' : ` (make ${precision} graphs with rcnn-serve models quantize${precision === 'fp16' ? ' --precision fp16' : ''})`;
  throw new DetectError('UNSUPPORTED_PRECISION', `model ${m.name} has no ${precision} graphs; it serves: ${precisions.join(', ')}${how}`);
}
