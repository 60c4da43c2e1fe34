/**
 * ONNX Runtime sessions. The one module that imports onnxruntime-node: the
 * rest of the project sees `GraphSession` with plain typed arrays.
 *
 * Note: `session.run()` of onnxruntime-node blocks the calling thread for the
 * whole run, so a server must call it from worker threads (README, "HTTP service").
 */

import { basename } from 'node:path';
import * as ort from 'onnxruntime-node';
import { DetectError } from '../errors.js';
import { EXECUTION_PROVIDERS, type Device, type DeviceFallback } from './device.js';

// ONNX Runtime's own logger writes to stderr (a failed CUDA load is several
// lines), and its level is fixed when the process opens its first session.
// Every failure reaches the caller as a DetectError or an onFallback warning,
// so keep the native log to fatal errors.
ort.env.logLevel = 'fatal';

export interface SessionOptions {
  device: Device;
  /** Threads ONNX Runtime may use inside one operator; 0 = its default (all cores). */
  intraOpThreads: number;
  /** Told when a requested device is unavailable and the CPU is used instead. */
  onFallback?: (message: string) => void;
  /** What an unavailable device does: 'cpu' (default), run there and tell onFallback; 'error', refuse. */
  deviceFallback?: DeviceFallback;
}

/** A dense float32 tensor. */
export interface Tensor {
  data: Float32Array;
  dims: readonly number[];
}

export interface GraphSession {
  /** The graph's file name in its package, for messages. */
  readonly name: string;
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  /** Each input's shape as the graph declares it: a number where fixed, a name (or -1) where free. */
  readonly inputShapes: Readonly<Record<string, readonly (number | string)[]>>;
  /** Actual device the graph runs on. */
  readonly device: Device;
  /** @param fetches the outputs to return (default: every output of the graph). */
  run(feeds: Record<string, Tensor>, fetches?: readonly string[]): Promise<Record<string, Tensor>>;
  release(): Promise<void>;
}

function ortOptions(providers: readonly string[], intraOpThreads: number): ort.InferenceSession.SessionOptions {
  return {
    executionProviders: [...providers],
    graphOptimizationLevel: 'all',
    intraOpNumThreads: intraOpThreads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    // ONNX Runtime's intra-op threads spin-wait after each run by default; between runs the
    // pipelines do their own work (preprocessing, RoI ops, selective search) on the calling
    // thread, and so do the next graph's threads (each session has a pool of its own). Off, on
    // this project's 2-core machine: Faster R-CNN 0.653 -> 0.426 s per image on the test split,
    // Fast R-CNN 0.613 -> 0.683 (docs/pipelines.md: one run before, two after).
    extra: { session: { intra_op: { allow_spinning: '0' } } },
  };
}

/** A graph to open: a file, or a file's bytes rewritten in memory (`path` then names it in messages). */
export type GraphSource = string | { path: string; bytes: Uint8Array };

/**
 * Open a graph on the requested device; a CUDA request that cannot be met
 * falls back to the CPU and says so through `onFallback`, or, with
 * deviceFallback 'error', is refused.
 * @throws DetectError INVALID_MODEL when the file cannot be loaded; DEVICE_UNAVAILABLE.
 */
export async function openGraph(source: GraphSource, options: SessionOptions): Promise<GraphSession> {
  const path = typeof source === 'string' ? source : source.path;
  const create = (o: ort.InferenceSession.SessionOptions) => (typeof source === 'string' ? ort.InferenceSession.create(source, o) : ort.InferenceSession.create(source.bytes, o));
  let session: ort.InferenceSession;
  let device: Device = options.device;
  try {
    session = await create(ortOptions(EXECUTION_PROVIDERS[options.device], options.intraOpThreads));
  } catch (err) {
    if (options.device !== 'cuda') throw new DetectError('INVALID_MODEL', `cannot load ONNX graph ${path}: ${(err as Error).message}`, { cause: err });
    const why = `CUDA execution provider unavailable (${(err as Error).message.split('\n')[0]})`;
    const how =
      'Install onnxruntime-node with ONNXRUNTIME_NODE_INSTALL=cuda12 on a host with CUDA 12 and cuDNN 9, or, with no network, the CUDA 13 provider of npm run gpu:bundle (docs/gpu.md), to use the GPU.';
    if (options.deviceFallback === 'error') throw new DetectError('DEVICE_UNAVAILABLE', `${why}; the CPU fallback is refused (device fallback: error). ${how}`, { cause: err });
    options.onFallback?.(`${why}; running on the CPU. ${how}`);
    device = 'cpu';
    try {
      session = await create(ortOptions(EXECUTION_PROVIDERS.cpu, options.intraOpThreads));
    } catch (err2) {
      throw new DetectError('INVALID_MODEL', `cannot load ONNX graph ${path}: ${(err2 as Error).message}`, { cause: err2 });
    }
  }
  const name = basename(path);
  return {
    name,
    inputNames: session.inputNames,
    outputNames: session.outputNames,
    inputShapes: Object.fromEntries(session.inputMetadata.map((m) => [m.name, m.isTensor ? m.shape : []])),
    device,
    async run(feeds, fetches) {
      const ortFeeds: Record<string, ort.Tensor> = {};
      for (const [name, t] of Object.entries(feeds)) ortFeeds[name] = new ort.Tensor('float32', t.data, t.dims);
      let results: ort.InferenceSession.OnnxValueMapType;
      try {
        results = await (fetches ? session.run(ortFeeds, [...fetches]) : session.run(ortFeeds));
      } catch (err) {
        throw new DetectError('INFERENCE_FAILED', `ONNX Runtime failed on ${path}: ${(err as Error).message}`, { cause: err });
      }
      const out: Record<string, Tensor> = {};
      for (const [output, value] of Object.entries(results)) {
        const t = value as ort.Tensor;
        if (t.type !== 'float32') throw new DetectError('INVALID_MODEL', `graph ${name} output ${JSON.stringify(output)} is ${t.type}; the pipelines read float32 outputs`);
        out[output] = { data: t.data as Float32Array, dims: t.dims };
      }
      return out;
    },
    release: () => session.release(),
  };
}
