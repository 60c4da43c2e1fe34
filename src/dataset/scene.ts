/**
 * One synthetic detection scene: a photo-like or textured background,
 * clutter, 1 to 9 objects of the classes in shapes.ts (16 to 250 px, with
 * partial occlusion), more clutter over them, then lighting, blur and noise.
 * Everything comes from one seed.
 */

import { Random } from '../core/random.js';
import { Canvas, coverage, type InsideTest, type Paint, type Placement, type Rgb } from './canvas.js';
import { bar, blob, SHAPE_CLASSES, wave } from './shapes.js';

export interface SceneObject {
  /** Index into SHAPE_CLASSES. */
  classIndex: number;
  /** Tight box of the whole object, x1 y1 x2 y2 in pixels. */
  box: [number, number, number, number];
  /** Pixels of the object left visible (coverage >= 0.5 and on top). */
  visibleArea: number;
}

export interface Scene {
  width: number;
  height: number;
  /** RGB, 8 bits, interleaved. */
  pixels: Uint8Array;
  objects: SceneObject[];
}

export const SCENE_LIMITS = Object.freeze({
  minWidth: 352, maxWidth: 512, minHeight: 288, maxHeight: 416,
  minObjectSize: 16, maxObjectSize: 250,
  maxObjects: 9,
  /** An object stays at least this visible when later objects land on it. */
  minVisibleFraction: 0.55,
});

function randomColour(rng: Random): Rgb {
  // HSV with full hue range, moderate-to-high saturation and value.
  const h = rng.uniform(0, 6), s = rng.uniform(0.25, 1), v = rng.uniform(60, 250);
  const c = v * s, x = c * (1 - Math.abs((h % 2) - 1)), m = v - c;
  const [r, g, b] = h < 1 ? [c, x, 0] : h < 2 ? [x, c, 0] : h < 3 ? [0, c, x] : h < 4 ? [0, x, c] : h < 5 ? [x, 0, c] : [c, 0, x];
  return [r + m, g + m, b + m];
}

function mix(a: Rgb, b: Rgb, t: number): Rgb {
  return [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, a[2] + (b[2] - a[2]) * t];
}

/** Smooth fractal value noise in [0, 1]: random lattices at several octaves, bilinearly interpolated. */
function valueNoise(rng: Random, width: number, height: number, baseCell: number, octaves: number): (x: number, y: number) => number {
  const layers = Array.from({ length: octaves }, (_, o) => {
    const cell = Math.max(2, baseCell / 2 ** o);
    const gw = Math.ceil(width / cell) + 2, gh = Math.ceil(height / cell) + 2;
    const grid = Float32Array.from({ length: gw * gh }, () => rng.float());
    return { cell, gw, grid, weight: 0.5 ** o };
  });
  const total = layers.reduce((s, l) => s + l.weight, 0);
  return (x, y) => {
    let sum = 0;
    for (const { cell, gw, grid, weight } of layers) {
      const fx = x / cell, fy = y / cell, ix = Math.floor(fx), iy = Math.floor(fy);
      const tx = fx - ix, ty = fy - iy;
      const sx = tx * tx * (3 - 2 * tx), sy = ty * ty * (3 - 2 * ty);
      const a = grid[iy * gw + ix]!, b = grid[iy * gw + ix + 1]!, c = grid[(iy + 1) * gw + ix]!, d = grid[(iy + 1) * gw + ix + 1]!;
      sum += weight * (a + (b - a) * sx + (c - a) * sy + (a - b - c + d) * sx * sy);
    }
    return sum / total;
  };
}

/** A surface pattern in texture space: 0 or 1 (or in between) choosing between two colours. */
function pattern(rng: Random, scale: number): (s: number, t: number) => number {
  const kind = rng.int(0, 5);
  const period = rng.uniform(0.15, 0.6) * scale;
  const angle = rng.uniform(0, Math.PI);
  const ca = Math.cos(angle), sa = Math.sin(angle);
  switch (kind) {
    case 0: return () => 0; // solid
    case 1: return (s, t) => (Math.floor((s * ca + t * sa) / period) & 1); // stripes
    case 2: return (s, t) => ((Math.floor(s / period) + Math.floor(t / period)) & 1); // checker
    case 3: return (s, t) => { // dots
      const fs = s / period - Math.floor(s / period) - 0.5, ft = t / period - Math.floor(t / period) - 0.5;
      return fs * fs + ft * ft < 0.09 ? 1 : 0;
    };
    case 4: return (s, t) => Math.min(1, Math.max(0, 0.5 + (s * ca + t * sa) / (2 * scale))); // gradient
    default: { // mottled
      const n = valueNoise(rng, 4 * scale + 8, 4 * scale + 8, period, 2);
      return (s, t) => (n(s + 2 * scale + 4, t + 2 * scale + 4) > 0.5 ? 1 : 0);
    }
  }
}

/** An object's paint: two colours through a pattern in the object's frame, shaded by a light direction. */
function objectPaint(rng: Random): Paint {
  const a = randomColour(rng), b = rng.chance(0.5) ? randomColour(rng) : mix(a, [0, 0, 0], rng.uniform(0.3, 0.6));
  const p = pattern(rng, 2);
  const lx = rng.uniform(-0.3, 0.3), ly = rng.uniform(-0.3, 0.3);
  const grain = rng.chance(0.3) ? rng.uniform(4, 14) : 0;
  const grainRng = new Random(rng.int(0, 2 ** 31));
  return (_x, _y, u, v) => {
    const c = mix(a, b, p(u, v));
    const shade = 1 + lx * u + ly * v;
    const g = grain ? grain * (grainRng.float() - 0.5) : 0;
    return [c[0] * shade + g, c[1] * shade + g, c[2] * shade + g];
  };
}

function background(canvas: Canvas, rng: Random): void {
  const { width, height } = canvas;
  const kind = rng.int(0, 2);
  if (kind === 0) {
    // Photo-like: fractal noise through a three-colour ramp.
    const n = valueNoise(rng, width, height, rng.uniform(40, 160), 5);
    const c0 = randomColour(rng), c1 = randomColour(rng), c2 = randomColour(rng);
    canvas.fill((x, y) => { const t = n(x, y); return t < 0.5 ? mix(c0, c1, 2 * t) : mix(c1, c2, 2 * t - 1); });
  } else if (kind === 1) {
    // Textured surface: a pattern in two colours, mottled by noise.
    const p = pattern(rng, rng.uniform(40, 200));
    const n = valueNoise(rng, width, height, 60, 3);
    const c0 = randomColour(rng), c1 = mix(c0, randomColour(rng), rng.uniform(0.2, 0.7));
    canvas.fill((x, y) => mix(mix(c0, c1, p(x, y)), [128, 128, 128], 0.4 * n(x, y)));
  } else {
    // A horizon: a sky gradient over textured ground.
    const horizon = rng.uniform(0.25, 0.7) * height;
    const sky0 = randomColour(rng), sky1 = randomColour(rng), ground = randomColour(rng);
    const n = valueNoise(rng, width, height, rng.uniform(10, 40), 4);
    canvas.fill((x, y) => (y < horizon ? mix(sky0, sky1, y / horizon) : mix(ground, [40, 40, 40], n(x, y) * (0.3 + (0.5 * (y - horizon)) / height))));
  }
}

/** Distractors: blobs, bars and strokes that are none of the classes. */
function clutter(canvas: Canvas, rng: Random, count: number): void {
  for (let i = 0; i < count; i++) {
    const kind = rng.int(0, 2);
    const size = rng.logUniform(10, 180);
    const inside: InsideTest = kind === 0 ? blob(rng) : kind === 1 ? bar(rng.uniform(0.03, 0.12)) : wave(rng);
    const at: Placement = {
      cx: rng.uniform(0, canvas.width), cy: rng.uniform(0, canvas.height),
      halfWidth: size / 2, halfHeight: kind === 0 ? (size / 2) * rng.uniform(0.6, 1.4) : size / 2, angle: rng.uniform(0, 2 * Math.PI),
    };
    canvas.paint(coverage(inside, at, canvas.width, canvas.height), at, objectPaint(rng));
  }
}

/** Render the scene of one seed. */
export function renderScene(seed: number): Scene {
  const rng = new Random(seed);
  const L = SCENE_LIMITS;
  const width = rng.int(L.minWidth, L.maxWidth), height = rng.int(L.minHeight, L.maxHeight);
  const canvas = new Canvas(width, height);
  background(canvas, rng);
  clutter(canvas, rng, rng.int(2, 10));

  // Objects, each kept only if every earlier object stays visible enough.
  const owner = new Int16Array(width * height).fill(-1);
  const fullArea: number[] = [];
  const objects: SceneObject[] = [];
  const wanted = rng.int(1, L.maxObjects);
  for (let attempt = 0; objects.length < wanted && attempt < 4 * wanted; attempt++) {
    const classIndex = rng.int(0, SHAPE_CLASSES.length - 1);
    const shape = SHAPE_CLASSES[classIndex]!;
    const size = Math.min(rng.logUniform(L.minObjectSize, L.maxObjectSize), 0.9 * Math.min(width, height));
    const aspect = rng.uniform(0.75, 1.33);
    const halfWidth = (size / 2) * Math.min(1, aspect), halfHeight = (size / 2) * Math.min(1, 1 / aspect);
    const angle = shape.rotates ? rng.uniform(0, 2 * Math.PI) : 0;
    const reach = Math.hypot(halfWidth, halfHeight);
    const at: Placement = { cx: rng.uniform(reach * 0.75, width - reach * 0.75), cy: rng.uniform(reach * 0.75, height - reach * 0.75), halfWidth, halfHeight, angle };
    const paint = objectPaint(rng);
    const outline = rng.chance(0.3) ? mix(randomColour(rng), [0, 0, 0], 0.6) : undefined;

    // Dry run on a scratch canvas: the pixels it would cover, and what that leaves of the others.
    const mask = coverage(shape.inside, at, width, height);
    const solid = mask.pixels.filter((_, j) => mask.alpha[j]! >= 0.5);
    if (solid.length < 0.5 * L.minObjectSize * L.minObjectSize) continue;
    const lost = new Map<number, number>();
    for (const i of solid) if (owner[i]! >= 0) lost.set(owner[i]!, (lost.get(owner[i]!) ?? 0) + 1);
    if ([...lost].some(([o, n]) => objects[o]!.visibleArea - n < L.minVisibleFraction * fullArea[o]!)) continue;

    if (outline) {
      canvas.paint(mask, at, () => outline);
      const inner = { ...at, halfWidth: halfWidth - 1.5, halfHeight: halfHeight - 1.5 };
      canvas.paint(coverage(shape.inside, inner, width, height), inner, paint);
    } else {
      canvas.paint(mask, at, paint);
    }
    let x1 = Infinity, y1 = Infinity, x2 = -Infinity, y2 = -Infinity;
    for (const i of solid) {
      const x = i % width, y = (i - x) / width;
      x1 = Math.min(x1, x); y1 = Math.min(y1, y); x2 = Math.max(x2, x + 1); y2 = Math.max(y2, y + 1);
      if (owner[i]! >= 0) objects[owner[i]!]!.visibleArea--;
      owner[i] = objects.length;
    }
    fullArea.push(solid.length);
    objects.push({ classIndex, box: [x1, y1, x2, y2], visibleArea: solid.length });
  }

  // Thin clutter over the objects (bars and strokes cover little of any object).
  for (let i = rng.int(0, 3); i > 0; i--) {
    const len = rng.uniform(30, 200);
    const inside = rng.chance(0.5) ? bar(rng.uniform(0.02, 0.05)) : wave(rng);
    const at = { cx: rng.uniform(0, width), cy: rng.uniform(0, height), halfWidth: len / 2, halfHeight: len / 2, angle: rng.uniform(0, 2 * Math.PI) };
    canvas.paint(coverage(inside, at, width, height), at, objectPaint(rng));
  }

  // The camera: uneven lighting with a colour cast, focus blur, sensor noise.
  const gain = rng.uniform(0.6, 1.3), gx = rng.uniform(-0.4, 0.4) / width, gy = rng.uniform(-0.4, 0.4) / height;
  canvas.light((x, y) => gain * (1 + gx * (x - width / 2) + gy * (y - height / 2)),
    [rng.uniform(0.85, 1.15), rng.uniform(0.85, 1.15), rng.uniform(0.85, 1.15)], rng.uniform(0.75, 1.35));
  if (rng.chance(0.4)) canvas.blur(rng.uniform(0.5, 1.6));
  canvas.addNoise(rng.uniform(0, 10), rng);
  return { width, height, pixels: canvas.toBytes(), objects };
}
