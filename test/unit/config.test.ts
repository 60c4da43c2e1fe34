import { describe, expect, it } from 'vitest';
import { ConfigError, configFromEnv } from '../../src/config/env.js';

describe('configFromEnv', () => {
  it('gives selective search a pixel limit of its own, 4 MP unless PROPOSALS_MAX_PIXELS says otherwise', () => {
    expect(configFromEnv({})).toMatchObject({ maxPixels: 40_000_000, proposalMaxPixels: 4_000_000 });
    expect(configFromEnv({ PROPOSALS_MAX_PIXELS: '1000000' }).proposalMaxPixels).toBe(1_000_000);
  });

  it('limits each worker\'s JavaScript heap to 512 MB unless WORKER_HEAP_MB says otherwise, at least 32', () => {
    expect(configFromEnv({}).workerHeapMb).toBe(512);
    expect(configFromEnv({ WORKER_HEAP_MB: '32' }).workerHeapMb).toBe(32);
    expect(() => configFromEnv({ WORKER_HEAP_MB: '31' })).toThrow('WORKER_HEAP_MB="31" is invalid; allowed: an integer from 32 to 65536');
  });

  it('batches nothing unless MAX_BATCH says how many requests a worker takes at once, 1 to 64', () => {
    expect(configFromEnv({}).maxBatch).toBe(1);
    expect(configFromEnv({ MAX_BATCH: '8' }).maxBatch).toBe(8);
    expect(() => configFromEnv({ MAX_BATCH: '65' })).toThrow('MAX_BATCH="65" is invalid; allowed: an integer from 1 to 64');
  });

  it('runs RoIAlign on the host unless ROI_PLACEMENT says graph', () => {
    expect(configFromEnv({}).roiPlacement).toBe('host');
    expect(configFromEnv({ ROI_PLACEMENT: 'graph' }).roiPlacement).toBe('graph');
    expect(() => configFromEnv({ ROI_PLACEMENT: 'gpu' })).toThrow('ROI_PLACEMENT="gpu" is invalid; allowed: host, graph');
  });

  it('falls back to the CPU for an unusable device unless DEVICE_FALLBACK says error', () => {
    expect(configFromEnv({}).deviceFallback).toBe('cpu');
    expect(configFromEnv({ DEVICE_FALLBACK: 'error' }).deviceFallback).toBe('error');
    expect(() => configFromEnv({ DEVICE_FALLBACK: 'warn' })).toThrow('DEVICE_FALLBACK="warn" is invalid; allowed: cpu, error');
  });

  it('stops the start on a bad value, naming the variable, the value and what is allowed', () => {
    expect(() => configFromEnv({ PROPOSALS_MAX_PIXELS: '0' })).toThrow(ConfigError);
    expect(() => configFromEnv({ PROPOSALS_MAX_PIXELS: '1.5' })).toThrow('PROPOSALS_MAX_PIXELS="1.5" is invalid; allowed: an integer from 1 to 30000000');
  });
});
