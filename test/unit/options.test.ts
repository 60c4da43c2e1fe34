/**
 * The option table (src/options.ts) is the one declaration of the request
 * options: openapi.yaml's query parameters are held to it here (names,
 * types, ranges, enums, defaults), and what is derived from it (validation,
 * querystring schemas, CLI flags and help, the batch client's flags) is
 * checked to follow it.
 */

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { BATCH_USAGE } from '../../src/cli/batch.js';
import { DETECT_USAGE } from '../../src/cli/detect.js';
import { flagOf, helpLine, optionsFromFlags } from '../../src/cli/flags.js';
import { PROPOSALS_USAGE } from '../../src/cli/proposals.js';
import { DetectError } from '../../src/errors.js';
import { checkOption, checkOptions, OPERATIONS, OPTIONS, optionsOf, querystringSchema, type Operation } from '../../src/options.js';
import { fixturePath } from '../helpers/fixtures.js';

const spec = parse(readFileSync(fixturePath('..', '..', 'openapi.yaml'), 'utf8'));

/** Each operation's route in openapi.yaml. */
const ROUTES: Partial<Record<Operation, string>> = { httpDetect: '/v1/detect', render: '/v1/render', httpExplain: '/v1/explain', httpFeatures: '/v1/features', proposals: '/v1/proposals' };

const refusal = (f: () => void) => {
  try {
    f();
  } catch (err) {
    expect(err).toBeInstanceOf(DetectError);
    expect((err as DetectError).code).toBe('INVALID_OPTION');
    return (err as Error).message;
  }
  return expect.unreachable('accepted');
};

describe('the option table', () => {
  it('declares each option completely: a doc line, ranges for numbers, a length for strings, a way to default', () => {
    for (const [name, s] of Object.entries(OPTIONS)) {
      expect(s.doc.length, name).toBeGreaterThan(10);
      if (s.type === 'number' || s.type === 'integer') expect([s.minimum, s.maximum].every(Number.isFinite), name).toBe(true);
      if (s.type === 'string' && !('enum' in s)) expect('maxLength' in s, name).toBe(true);
      if ('pipelines' in s || 'methods' in s) expect('otherwise' in s, `${name} says what the others do instead`).toBe(true);
    }
  });

  for (const [op, path] of Object.entries(ROUTES)) {
    it(`openapi.yaml's query parameters of POST ${path} are the table's ${op} options`, () => {
      const params: { name: string; in: string; schema: Record<string, unknown> }[] = spec.paths[path].post.parameters.filter((p: { in: string }) => p.in === 'query');
      expect(params.map((p) => p.name)).toEqual(optionsOf(op as Operation).map(([name]) => name));
      for (const [name, s] of optionsOf(op as Operation)) {
        const documented = params.find((p) => p.name === name)!.schema;
        const expected = { ...querystringSchema(op as Operation).properties[name], ...(s.default !== undefined && { default: s.default }) };
        expect(documented, `${path} ${name}`).toEqual(expected);
      }
    });
  }

  it('the querystring schemas refuse what is not in the table', () => {
    for (const op of Object.keys(OPERATIONS) as Operation[]) expect(querystringSchema(op).additionalProperties).toBe(false);
    expect(querystringSchema('httpDetect').properties.maxDetections).toEqual({ type: 'integer', minimum: 1, maximum: 10000 });
  });

  it('checks a value against its range, type and enum, naming it and what is allowed', () => {
    expect(refusal(() => checkOption('maxDetections', OPTIONS.maxDetections, 0))).toBe('maxDetections is 0; allowed: an integer from 1 to 10000');
    expect(refusal(() => checkOption('maxDetections', OPTIONS.maxDetections, 2.5))).toBe('maxDetections is 2.5; allowed: an integer from 1 to 10000');
    expect(refusal(() => checkOption('scoreThreshold', OPTIONS.scoreThreshold, Number.NaN))).toBe('scoreThreshold is null; allowed: a number from 0 to 1');
    expect(refusal(() => checkOption('scoreThreshold', OPTIONS.scoreThreshold, '0.5'))).toBe('scoreThreshold is "0.5"; allowed: a number from 0 to 1');
    expect(refusal(() => checkOption('mode', OPTIONS.mode, 'turbo'))).toBe('mode "turbo" is unknown; allowed: single, fast, quality, opencv-fast, opencv-quality');
    expect(refusal(() => checkOption('classes', OPTIONS.classes, 'x'.repeat(10001)))).toContain('allowed: a string of 0 to 10000 characters');
    expect(() => checkOption('maxProposals', OPTIONS.maxProposals, 100000)).not.toThrow();
  });

  it('refuses an option the pipeline or method does not take, saying what that one does instead', () => {
    expect(refusal(() => checkOptions('detect', { mode: 'fast' }, { pipeline: 'faster-rcnn' }))).toBe('mode is an rcnn, fast-rcnn option; faster-rcnn proposes with its RPN');
    expect(refusal(() => checkOptions('detect', { scales: 'single' }, { pipeline: 'rcnn' }))).toBe("scales is a faster-rcnn option; rcnn runs at the model's input size");
    expect(refusal(() => checkOptions('proposals', { seed: 3 }, { method: 'rpn' }))).toBe('seed is a selective-search option; rpn is deterministic');
    expect(refusal(() => checkOptions('proposals', { model: 'shapes-vgg' }, { method: 'selective-search' }))).toBe('model is an rpn option; selective-search needs no model');
    expect(() => checkOptions('detect', { maxProposals: 50, scales: 'single' }, { pipeline: 'faster-rcnn' })).not.toThrow();
  });
});

describe('the CLI flags derived from it', () => {
  it('every option of detect, proposals and batch is a kebab-case flag with its help line', () => {
    expect(flagOf('maxDetections')).toBe('max-detections');
    for (const [name, s] of optionsOf('cliDetect')) {
      expect(DETECT_USAGE).toContain(helpLine(name, s, s.pipelines));
      expect(BATCH_USAGE).toContain(`--${flagOf(name)}`);
    }
    for (const [name, s] of optionsOf('proposals')) expect(PROPOSALS_USAGE).toContain(helpLine(name, s, s.methods));
    expect(helpLine('iouThreshold', OPTIONS.iouThreshold)).toBe("  --iou-threshold T        per-class NMS IoU threshold, 0..1 (default: the model's postprocess.nmsThreshold)");
  });

  it('parses numbers by the table and leaves their ranges to the library', () => {
    expect(optionsFromFlags('detect', { 'max-detections': '5', 'score-threshold': '0.25', pipeline: 'rcnn', scales: 'single' })).toEqual({ maxDetections: 5, scoreThreshold: 0.25, pipeline: 'rcnn', scales: 'single' });
    expect(optionsFromFlags('detect', { 'max-detections': '0' })).toEqual({ maxDetections: 0 });
    expect(() => optionsFromFlags('detect', { 'iou-threshold': 'high' })).toThrow('--iou-threshold needs a number, got "high"');
  });
});
