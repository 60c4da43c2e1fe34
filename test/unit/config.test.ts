import { describe, expect, it } from 'vitest';
import { ConfigError, configFromEnv } from '../../src/config/env.js';

describe('configFromEnv', () => {
  it('gives selective search a pixel limit of its own, 4 MP unless PROPOSALS_MAX_PIXELS says otherwise', () => {
    expect(configFromEnv({})).toMatchObject({ maxPixels: 40_000_000, proposalMaxPixels: 4_000_000 });
    expect(configFromEnv({ PROPOSALS_MAX_PIXELS: '1000000' }).proposalMaxPixels).toBe(1_000_000);
  });

  it('stops the start on a bad value, naming the variable, the value and what is allowed', () => {
    expect(() => configFromEnv({ PROPOSALS_MAX_PIXELS: '0' })).toThrow(ConfigError);
    expect(() => configFromEnv({ PROPOSALS_MAX_PIXELS: '1.5' })).toThrow('PROPOSALS_MAX_PIXELS="1.5" is invalid; allowed: an integer from 1 to 30000000');
  });
});
