/**
 * The synthetic dataset's object classes and its distractors, as inside tests
 * in a shape's own frame (u, v in [-1, 1]). A class is a shape; colour,
 * texture, size, aspect and rotation vary within it, so a detector has to
 * learn the shape.
 */

import type { InsideTest } from './canvas.js';
import type { Random } from '../core/random.js';

function polygon(vertices: [number, number][]): InsideTest {
  return (u, v) => {
    let inside = false;
    for (let i = 0, j = vertices.length - 1; i < vertices.length; j = i++) {
      const [xi, yi] = vertices[i]!, [xj, yj] = vertices[j]!;
      if (yi > v !== yj > v && u < ((xj - xi) * (v - yi)) / (yj - yi) + xi) inside = !inside;
    }
    return inside;
  };
}

/** n vertices on the unit circle, the first at the top, radii alternating when `inner` is given. */
function radial(n: number, inner?: number): [number, number][] {
  const points: [number, number][] = [];
  const count = inner === undefined ? n : 2 * n;
  for (let i = 0; i < count; i++) {
    const r = inner !== undefined && i % 2 === 1 ? inner : 1;
    const t = -Math.PI / 2 + (2 * Math.PI * i) / count;
    points.push([r * Math.cos(t), r * Math.sin(t)]);
  }
  return points;
}

/** The classes, in category-id order (id = index + 1). */
export const SHAPE_CLASSES: readonly { name: string; inside: InsideTest; rotates: boolean }[] = [
  { name: 'circle', inside: (u, v) => u * u + v * v <= 1, rotates: false },
  { name: 'square', inside: (u, v) => Math.abs(u) <= 1 && Math.abs(v) <= 1, rotates: true },
  { name: 'triangle', inside: polygon([[0, -1], [1, 1], [-1, 1]]), rotates: true },
  { name: 'star', inside: polygon(radial(5, 0.42)), rotates: true },
  { name: 'cross', inside: (u, v) => (Math.abs(u) <= 0.34 && Math.abs(v) <= 1) || (Math.abs(v) <= 0.34 && Math.abs(u) <= 1), rotates: true },
  { name: 'hexagon', inside: polygon(radial(6)), rotates: true },
  { name: 'ring', inside: (u, v) => { const r = u * u + v * v; return r <= 1 && r >= 0.3; }, rotates: false },
  { name: 'crescent', inside: (u, v) => u * u + v * v <= 1 && (u - 0.5) * (u - 0.5) + v * v > 0.64, rotates: true },
];

/** An irregular blob: a circle whose radius wobbles with a few random harmonics. */
export function blob(rng: Random): InsideTest {
  const harmonics = Array.from({ length: 3 }, (_, i) => ({ k: i + 2 + rng.int(0, 2), a: rng.uniform(0.12, 0.3), phase: rng.uniform(0, 2 * Math.PI) }));
  const norm = 1 + harmonics.reduce((s, h) => s + h.a, 0);
  return (u, v) => {
    const t = Math.atan2(v, u);
    let r = 1;
    for (const h of harmonics) r += h.a * Math.sin(h.k * t + h.phase);
    return Math.hypot(u, v) <= r / norm;
  };
}

/** A bar (a line segment), `thickness` a fraction of its length. */
export function bar(thickness: number): InsideTest {
  return (u, v) => Math.abs(u) <= 1 && Math.abs(v) <= thickness;
}

/** A sine-wave stroke across the frame. */
export function wave(rng: Random): InsideTest {
  const cycles = rng.uniform(1, 3), phase = rng.uniform(0, 2 * Math.PI), amp = rng.uniform(0.3, 0.8), thick = rng.uniform(0.06, 0.15);
  return (u, v) => Math.abs(u) <= 1 && Math.abs(v - amp * Math.sin(Math.PI * cycles * u + phase)) <= thick;
}
