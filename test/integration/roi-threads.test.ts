/**
 * The RoI ops spread over threads (src/workers/roi-threads.ts): the same
 * output as one thread, bit for bit; a helper that dies costs nothing but
 * time; small jobs start no thread.
 */

import type { Worker } from 'node:worker_threads';
import { afterAll, describe, expect, it } from 'vitest';
import type { FeatureMap } from '../../src/core/roi/feature-map.js';
import { poolRegions, type RoiOp } from '../../src/core/roi/pool-regions.js';
import { RoiThreads } from '../../src/workers/roi-threads.js';

let state = 7;
const next = () => ((state = (Math.imul(state, 1103515245) + 12345) >>> 0) / 2 ** 32);
const map = (height: number, width: number, channels = 64): FeatureMap => ({ data: Float32Array.from({ length: height * width * channels }, () => next() * 4 - 2), channels, height, width });
/** A pyramid for a 256 x 384 input, strides 4 to 32. */
const levels = [map(64, 96), map(32, 48), map(16, 24), map(8, 12)];
const rois = new Float32Array(4 * 600);
for (let i = 0; i < 600; i++) {
  const side = 8 * 2 ** (next() * 5), x = next() * 384, y = next() * 256;
  rois.set([x, y, x + side, y + side * (0.5 + next())], 4 * i);
}
const align: RoiOp = { type: 'roi-align', scales: [1 / 4, 1 / 8, 1 / 16, 1 / 32], outputSize: [7, 7], samplingRatio: 2, aligned: false };
const pool: RoiOp = { type: 'roi-pool', outputSize: [7, 7], spatialScale: 1 / 16 };
const bits = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
const workersOf = (t: RoiThreads) => (t as unknown as { helpers?: { slots: { worker: Worker }[] } }).helpers?.slots.map((s) => s.worker) ?? [];

const opened: RoiThreads[] = [];
const threads = (n: number) => {
  const t = new RoiThreads(n);
  opened.push(t);
  return t;
};
afterAll(() => Promise.all(opened.map((t) => t.close())));

describe('RoiThreads', () => {
  it('2 and 3 threads give the one-thread output bit for bit: multi-scale RoIAlign and RoI max pooling', async () => {
    const serial = { align: poolRegions(levels, rois, align), pool: poolRegions(levels.slice(2, 3), rois, pool) };
    for (const n of [2, 3]) {
      const t = threads(n);
      expect(bits(await t.pool(levels, rois, align)).equals(bits(serial.align)), `${n} threads, RoIAlign`).toBe(true);
      expect(bits(await t.pool(levels.slice(2, 3), rois, pool)).equals(bits(serial.pool)), `${n} threads, RoIPool`).toBe(true);
      expect(workersOf(t)).toHaveLength(n - 1);
    }
  });

  it('calls that overlap each get their own answer (the shared copies are taken in turn)', async () => {
    const t = threads(2);
    const other = [map(64, 96), map(32, 48), map(16, 24), map(8, 12)];
    const [a, b] = await Promise.all([t.pool(levels, rois, align), t.pool(other, rois, align)]);
    expect(bits(a).equals(bits(poolRegions(levels, rois, align)))).toBe(true);
    expect(bits(b).equals(bits(poolRegions(other, rois, align)))).toBe(true);
  });

  it('a helper that dies mid-job: its share is pooled on the calling thread, and the next job has a live helper', async () => {
    const t = threads(2);
    const serial = poolRegions(levels, rois, align);
    await t.pool(levels, rois, align);
    const job = t.pool(levels, rois, align);
    // As an out-of-memory crash ends a thread: gone with the job it had.
    await workersOf(t)[0]!.terminate();
    expect(bits(await job).equals(bits(serial))).toBe(true);
    expect(bits(await t.pool(levels, rois, align)).equals(bits(serial))).toBe(true);
  });

  it('one thread, or a job under MIN_SPLIT_VALUES, runs on the calling thread and starts no helper', async () => {
    const one = threads(1);
    expect(bits(await one.pool(levels, rois, align)).equals(bits(poolRegions(levels, rois, align)))).toBe(true);
    const small = threads(2);
    const few = rois.subarray(0, 4 * 20);
    expect(bits(await small.pool(levels, few, align)).equals(bits(poolRegions(levels, few, align)))).toBe(true);
    expect(workersOf(one)).toEqual([]);
    expect(workersOf(small)).toEqual([]);
  });
});
