import { describe, expect, it } from 'vitest';
import { DetectError } from '../../src/errors.js';
import { batching } from '../../src/runtime/batching.js';
import type { GraphSession, Tensor } from '../../src/runtime/session.js';

/** A stand-in graph: y = 10 x + row index within the run (so a wrong split shows), and the batch sizes it ran. */
function fakeGraph(options: { fail?: string; rowsOut?: (rows: number) => number } = {}): GraphSession & { runs: number[][] } {
  const runs: number[][] = [];
  return {
    name: 'fake.onnx',
    inputNames: ['x'],
    inputShapes: { x: ['batch', 2] },
    outputNames: ['y'],
    device: 'cpu',
    runs,
    async run(feeds) {
      const x = feeds.x!;
      runs.push([...x.dims]);
      await new Promise((r) => setTimeout(r, 5));
      if (options.fail) throw new DetectError('INFERENCE_FAILED', options.fail);
      const rows = options.rowsOut?.(x.dims[0]!) ?? x.dims[0]!;
      const width = x.data.length / x.dims[0]!;
      const y = new Float32Array(rows * width);
      for (let i = 0; i < y.length; i++) y[i] = 10 * (x.data[i] ?? 0);
      return { y: { data: y, dims: [rows, ...x.dims.slice(1)] } };
    },
    release: async () => undefined,
  };
}

const tensor = (rows: number, width: number, start: number): Tensor => ({ data: Float32Array.from({ length: rows * width }, (_, i) => start + i), dims: [rows, width] });

describe('batching', () => {
  it('runs the calls made together as one, concatenated on the first axis, and gives each its own rows', async () => {
    const g = fakeGraph();
    const b = batching(g, 8);
    const inputs = [tensor(1, 3, 0), tensor(2, 3, 100), tensor(1, 3, 200)];
    const outs = await Promise.all(inputs.map((x) => b.run({ x })));
    expect(g.runs).toEqual([[4, 3]]);
    outs.forEach((o, k) => {
      expect(o.y!.dims).toEqual(inputs[k]!.dims);
      expect(Array.from(o.y!.data)).toEqual(Array.from(inputs[k]!.data, (v) => 10 * v));
    });
    expect(b.stats).toEqual({ runs: 1, calls: 3, largest: 3 });
  });

  it('keeps shapes apart (an image size per batch), takes at most maxBatch calls a run, and batches what waited while it ran', async () => {
    const g = fakeGraph();
    const b = batching(g, 2);
    const calls = [tensor(1, 3, 0), tensor(1, 4, 0), tensor(1, 3, 10), tensor(1, 3, 20), tensor(1, 4, 10)].map((x) => b.run({ x }));
    await Promise.all(calls);
    // Oldest first: the width-3 calls two at a time, the width-4 ones together once their turn comes.
    expect(g.runs).toEqual([[2, 3], [2, 4], [1, 3]]);
    const first = b.run({ x: tensor(1, 3, 0) });
    await new Promise((r) => setImmediate(r)); // the first call's run has started
    const later = [b.run({ x: tensor(1, 3, 1) }), b.run({ x: tensor(1, 3, 2) })];
    await Promise.all([first, ...later]);
    expect(g.runs.slice(3)).toEqual([[1, 3], [2, 3]]);
  });

  it('fails every call of a failed run, refuses outputs without the summed rows and inputs that disagree on rows, and goes on', async () => {
    const failing = batching(fakeGraph({ fail: 'out of device memory' }), 4);
    const results = await Promise.allSettled([failing.run({ x: tensor(1, 2, 0) }), failing.run({ x: tensor(1, 2, 5) })]);
    expect(results.map((r) => r.status === 'rejected' && (r.reason as Error).message)).toEqual(['out of device memory', 'out of device memory']);

    const oneImage = batching(fakeGraph({ rowsOut: () => 1 }), 4);
    await expect(Promise.all([oneImage.run({ x: tensor(1, 2, 0) }), oneImage.run({ x: tensor(1, 2, 0) })])).rejects.toMatchObject({
      code: 'INFERENCE_FAILED',
      message: 'graph fake.onnx cannot run batched: output y has 1 rows for 2 input rows',
    });
    expect((await oneImage.run({ x: tensor(1, 2, 3) })).y!.dims).toEqual([1, 2]); // alone it still runs

    const b = batching(fakeGraph(), 4);
    await expect(b.run({ x: tensor(2, 2, 0), z: tensor(3, 2, 0) })).rejects.toThrow("a batched graph's inputs must agree on the first axis; z has 3, x 2");
  });
});
