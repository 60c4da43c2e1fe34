/**
 * Model packages: a folder with model.json and the ONNX graphs it names.
 */

import { access, readdir, readFile, stat } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { basename, isAbsolute, join, resolve } from 'node:path';
import { DetectError, QuantizeError } from '../errors.js';
import { didYouMean } from '../suggest.js';
import { openGraph, type GraphSession, type SessionOptions, type Tensor } from '../runtime/session.js';
import { batching } from '../runtime/batching.js';
import { freeBatchAxis, readModel, writeModel, type EditableModel } from '../onnx/model.js';
import { planQuantization, quantizeGraph } from '../onnx/qdq.js';
import { withRoiOp, withWarp, type InGraphRoiOp } from '../onnx/in-graph-roi.js';
import { featureLayers, firstConvFilters, withLayerOutputs, type ConvFilters, type FeatureLayer } from '../onnx/layer-outputs.js';
import { checkPrecision, graphsOf, parseManifest, precisionsOf } from './manifest.js';
import type { ModelManifest, Precision } from './manifest-schema.js';

/** The packages shipped with rcnn-serve. */
export const SHIPPED_MODELS_DIR = fileURLToPath(new URL('../../models', import.meta.url));

/** The package `detect` uses when no model is named. */
export const DEFAULT_MODEL = 'shapes-vgg';

/**
 * What the default model knows, and the way to one that sees photos, said where a user meets it
 * (detect's output, the server's start-up log); `use` is how that surface takes another model.
 */
export function defaultModelDomain(classes: readonly string[], use: string): string {
  return `${DEFAULT_MODEL}, the default model, detects only its ${classes.length} synthetic shapes (${classes.join(', ')}); ` +
    `for photos, export a COCO model (README: "A COCO model from torchvision") and ${use}`;
}

export interface LoadedModel {
  readonly dir: string;
  readonly manifest: ModelManifest;
  /** The precision of the open graphs. */
  readonly precision: Precision;
  /** Open graphs by file name. */
  readonly graphs: ReadonlyMap<string, GraphSession>;
  /**
   * With roiPlacement 'graph', by pipeline: the graphs with the RoI op inside
   * (onnx/in-graph-roi.ts): Faster R-CNN's box head and Fast R-CNN's head
   * pooling their RoIs, R-CNN's backbone warping its crops.
   */
  readonly roiGraphs: ReadonlyMap<RoiGraphPipeline, GraphSession>;
  /** With featureLayers: the backbone's viewable layers (exposed as outputs of its graph), and its first convolution's filters. */
  readonly features?: BackboneViews;
  close(): Promise<void>;
}

/** What feature views read: the backbone (whose run takes the fetches of a layer), its layers, its first filters. */
export interface BackboneViews {
  /** The backbone's graph, unbatched: run it with `fetches` naming a layer's output. */
  graph: GraphSession;
  layers: readonly FeatureLayer[];
  /** Undefined where the first convolution's weights are not float32 in the graph (a stored int8 package). */
  filters: ConvFilters | undefined;
}

async function isDir(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isDirectory();
  } catch {
    return false;
  }
}

/**
 * Find a package: a path to a folder (absolute, or relative to the working
 * directory), or the name of a folder under `modelsDir`.
 * @throws DetectError MODEL_NOT_FOUND naming both places looked in.
 */
export async function resolveModelDir(nameOrPath: string, modelsDir: string = SHIPPED_MODELS_DIR): Promise<string> {
  const asPath = resolve(nameOrPath);
  if (await isDir(asPath)) return asPath;
  if (!isAbsolute(nameOrPath) && !nameOrPath.includes('/')) {
    const named = join(modelsDir, nameOrPath);
    if (await isDir(named)) return named;
  }
  const names = await readdir(modelsDir).catch(() => [] as string[]);
  throw new DetectError('MODEL_NOT_FOUND', `no model package ${JSON.stringify(nameOrPath)}: not a folder, nor a package name under ${modelsDir}${didYouMean(nameOrPath, names)}`);
}

/** Read and validate a package's model.json without opening its graphs. */
export async function readManifest(dir: string): Promise<ModelManifest> {
  const file = join(dir, 'model.json');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    throw new DetectError('INVALID_MODEL', `model package ${dir} has no readable model.json`);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new DetectError('INVALID_MODEL', `${file} is not valid JSON: ${(err as Error).message}`);
  }
  return parseManifest(doc, file);
}

/**
 * What calibration (`rcnn-serve models quantize`) changes in a load: each
 * graph's bytes before it opens (to add outputs), and a look at every run's
 * outputs.
 */
export interface GraphHooks {
  rewrite?(file: string, bytes: Uint8Array): Uint8Array;
  observe?(file: string, outputs: Readonly<Record<string, Tensor>>): void;
}

export interface LoadOptions extends SessionOptions {
  /** Which of the package's precisions to open (precisionsOf): default its first. */
  precision?: Precision;
  hooks?: GraphHooks;
  /**
   * Run concurrent calls of each graph as one batch of at most this many
   * (runtime/batching.ts); 1 (default): each call alone. Graph inputs that
   * fix the batch axis at 1 are freed for it.
   */
  maxBatch?: number;
  /**
   * Where the RoI ops run: 'host' (default), TypeScript on the feature maps
   * the backbone returns; 'graph', inside the graphs (roiGraphRewrites), on
   * the graphs' device (docs/gpu.md, "Placements").
   */
  roiPlacement?: RoiPlacement;
  /**
   * Expose the backbone's activations, poolings and normalisations as outputs
   * of its graph (onnx/layer-outputs.ts) for feature views; the pipelines
   * still fetch only their own outputs. Measured end to end: within noise
   * (docs/explain.md).
   */
  featureLayers?: boolean;
}

export const ROI_PLACEMENTS = ['host', 'graph'] as const;
export type RoiPlacement = (typeof ROI_PLACEMENTS)[number];

/**
 * A package's int8 graph built from its fp32 one and the calibrated ranges
 * in model.json, checked against the int8 nodes model.json lists.
 * @throws DetectError INVALID_MODEL when they disagree.
 */
export function int8Graph(manifest: ModelManifest, file: string, fp32: Uint8Array, where: string): Uint8Array {
  const spec = manifest.quantization?.graphs[file];
  if (!spec) return fp32;
  const keepFloat = new Set(spec.floatNodes.map((n) => n.node));
  try {
    const model = readModel(fp32);
    const plan = planQuantization(model, keepFloat);
    if (plan.int8Nodes.join('\n') !== spec.int8Nodes.join('\n')) {
      throw new DetectError('INVALID_MODEL', `${where}: quantization.graphs.${file}.int8Nodes (${spec.int8Nodes.length}) do not match the graph's quantizable nodes (${plan.int8Nodes.length}); quantize the package again`);
    }
    return writeModel(quantizeGraph(model, new Map(Object.entries(spec.ranges)), keepFloat));
  } catch (err) {
    if (err instanceof DetectError) throw err;
    if (err instanceof QuantizeError || err instanceof RangeError) throw new DetectError('INVALID_MODEL', `${where}: cannot build the int8 ${file}: ${err.message}`, { cause: err });
    throw err;
  }
}

/**
 * Load a package: validate model.json, check every graph file exists, open the
 * graphs and check they have the inputs and outputs the manifest names.
 * @throws DetectError INVALID_MODEL naming the field, file or tensor at fault;
 * UNSUPPORTED_PRECISION for a precision the package does not have.
 */
export async function loadModel(dir: string, options: LoadOptions): Promise<LoadedModel> {
  const manifest = await readManifest(dir);
  const precision = options.precision ?? precisionsOf(manifest)[0]!;
  checkPrecision(manifest, precision);
  const built = precision === 'int8' && (manifest.precision ?? 'fp32') === 'fp32';
  const batched = (options.maxBatch ?? 1) > 1;
  const rewrites = options.roiPlacement === 'graph' ? roiGraphRewrites(manifest) : new Map<RoiGraphPipeline, RoiGraphRewrite>();
  const rewritten = new Set([...rewrites.values()].map((r) => r.file));
  const viewed = options.featureLayers ? manifest.backbone.file : undefined;
  let features: BackboneViews | undefined;
  const wanted = graphsOf(manifest);
  for (const [file, { field }] of wanted) {
    try {
      await access(join(dir, file));
    } catch {
      throw new DetectError('INVALID_MODEL', `model package ${dir}: ${field} names ${JSON.stringify(file)}, which does not exist there`);
    }
  }
  const graphs = new Map<string, GraphSession>();
  /** The bytes (int8 where built) of the graphs the RoI placement rewrites, before any other change. */
  const sources = new Map<string, Uint8Array>();
  const roiGraphs = new Map<RoiGraphPipeline, GraphSession>();
  const close = async () => {
    await Promise.all([...graphs.values(), ...roiGraphs.values()].map((g) => g.release()));
    graphs.clear();
    roiGraphs.clear();
  };
  try {
    // Once one graph falls back to the CPU, open the others there directly (one warning per model).
    let device = options.device;
    for (const [file, { inputs, outputs }] of wanted) {
      const path = join(dir, file);
      const hooks = options.hooks;
      let bytes: Uint8Array | undefined = built || batched || hooks?.rewrite || rewritten.has(file) || file === viewed ? new Uint8Array(await readFile(path)) : undefined;
      // The layers and filters come from the package's own graph; the layers are added to the graph as it opens.
      const source = bytes && file === viewed ? readModel(bytes) : undefined;
      const views = source && viewsOf(source);
      const read = bytes;
      if (bytes && built) bytes = int8Graph(manifest, file, bytes, dir);
      if (bytes && rewritten.has(file)) sources.set(file, bytes);
      if (bytes && batched) bytes = writeModel(freeBatchAxis(readModel(bytes)));
      if (bytes && hooks?.rewrite) bytes = hooks.rewrite(file, bytes);
      let own: string[] = [];
      if (bytes && views) {
        const graph = bytes === read ? source! : readModel(bytes);
        own = graph.outputs.map((o) => o.name);
        bytes = writeModel(withLayerOutputs(graph, views.layers));
      }
      const raw = await openGraph(bytes ? { path, bytes } : path, { ...options, device });
      // With the layers exposed, a run returns the graph's own outputs unless it names others.
      const session = views ? fetching(raw, own) : raw;
      if (views) features = { graph: session, ...views };
      const opened = batched ? batching(session, options.maxBatch!) : session;
      const g = hooks?.observe ? observed(opened, file, hooks.observe) : opened;
      device = g.device;
      graphs.set(file, g);
      const missingIn = inputs.filter((n) => !g.inputNames.includes(n));
      const missingOut = outputs.filter((n) => !g.outputNames.includes(n));
      if (missingIn.length || missingOut.length) {
        throw new DetectError(
          'INVALID_MODEL',
          `model package ${dir}: ${file} lacks ${[...missingIn.map((n) => `input ${n}`), ...missingOut.map((n) => `output ${n}`)].join(', ')} ` +
            `named in model.json (the graph has inputs ${g.inputNames.join(', ')}; outputs ${g.outputNames.join(', ')})`,
        );
      }
    }
    for (const [pipeline, { file, rewrite }] of rewrites) {
      const bytes = writeModel(rewrite(readModel(sources.get(file)!)));
      roiGraphs.set(pipeline, await openGraph({ path: join(dir, file), bytes }, { ...options, device: graphs.get(file)!.device }));
    }
  } catch (err) {
    await close();
    throw err;
  }
  return { dir, manifest, precision, graphs, roiGraphs, ...(features && { features }), close };
}

/** A backbone's viewable layers and first filters, read from its fp32 (or stored) graph. */
function viewsOf(graph: EditableModel): Omit<BackboneViews, 'graph'> {
  return { layers: featureLayers(graph.nodes), filters: firstConvFilters(graph) };
}

/** A graph whose runs return `defaults` where the caller names no outputs. */
function fetching(g: GraphSession, defaults: readonly string[]): GraphSession {
  return { ...g, run: (feeds, fetches) => g.run(feeds, fetches ?? defaults), release: () => g.release() };
}

export type RoiGraphPipeline = 'rcnn' | 'fast-rcnn' | 'faster-rcnn';

interface RoiGraphRewrite {
  file: string;
  rewrite: (graph: EditableModel) => EditableModel;
}

/** With roiPlacement 'graph': which graph each pipeline rewrites with its RoI op inside, and how. */
function roiGraphRewrites(m: ModelManifest): Map<RoiGraphPipeline, RoiGraphRewrite> {
  const rewrites = new Map<RoiGraphPipeline, RoiGraphRewrite>();
  const faster = m.pipelines['faster-rcnn'];
  if (faster) {
    const roi = faster.roiOp;
    const base = { input: faster.boxHead.input, levels: roi.features.length, outputSize: roi.outputSize };
    // RoI max pooling reads the first map only, as the host's does.
    const op: InGraphRoiOp = roi.type === 'roi-align' ? { ...base, type: 'roi-align', samplingRatio: roi.samplingRatio ?? 2, aligned: roi.aligned ?? false } : { ...base, levels: 1, type: 'roi-pool' };
    rewrites.set('faster-rcnn', { file: faster.boxHead.file, rewrite: (g) => withRoiOp(g, op) });
  }
  const fast = m.pipelines['fast-rcnn'];
  if (fast) rewrites.set('fast-rcnn', { file: fast.head.file, rewrite: (g) => withRoiOp(g, { type: 'roi-pool', input: fast.head.input, levels: 1, outputSize: fast.roiPool.outputSize }) });
  const rcnn = m.pipelines.rcnn;
  if (rcnn) {
    const warp = { input: m.backbone.input, size: rcnn.warp.size, samplingRatio: rcnn.warp.samplingRatio, mirror: rcnn.mirror === true };
    rewrites.set('rcnn', { file: m.backbone.file, rewrite: (g) => withWarp(g, warp) });
  }
  return rewrites;
}

function observed(g: GraphSession, file: string, observe: NonNullable<GraphHooks['observe']>): GraphSession {
  return {
    ...g,
    async run(feeds) {
      const outputs = await g.run(feeds);
      observe(file, outputs);
      return outputs;
    },
    release: () => g.release(),
  };
}

/** A package's display name: its manifest name, or its folder's. */
export function modelName(model: LoadedModel): string {
  return model.manifest.name || basename(model.dir);
}
