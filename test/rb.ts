import { roiAlign } from '../src/core/roi/roi-align.js';
const C = 256, H = 100, W = 134;
const data = new Float32Array(C * H * W).map(() => Math.random());
const rois = new Float32Array(4000);
for (let i = 0; i < 1000; i++) { const x = Math.random() * 400, y = Math.random() * 250; rois.set([x, y, x + 10 + Math.random() * 60, y + 10 + Math.random() * 60], 4 * i); }
function hwc(src: Float32Array, C: number, H: number, W: number) { const out = new Float32Array(src.length); const hw = H * W; for (let c = 0; c < C; c++) { const b = c * hw; for (let p = 0; p < hw; p++) out[p * C + c] = src[b + p]!; } return out; }
function alignCL(f: Float32Array, C: number, H: number, W: number, rois: Float32Array, pos: Int32Array, wts: Float32Array, samples: number) {
  const K = rois.length / 4, bins = 49; const out = new Float32Array(K * C * bins); const acc = new Float32Array(C);
  for (let r = 0; r < K; r++) {
    let s = 0;
    for (let b = 0; b < bins; b++) {
      acc.fill(0);
      for (let q = 0; q < samples; q++, s += 4) {
        const p1 = pos[s]! * C, p2 = pos[s + 1]! * C, p3 = pos[s + 2]! * C, p4 = pos[s + 3]! * C;
        const w1 = wts[s]!, w2 = wts[s + 1]!, w3 = wts[s + 2]!, w4 = wts[s + 3]!;
        for (let c = 0; c < C; c++) acc[c] += w1 * f[p1 + c]! + w2 * f[p2 + c]! + w3 * f[p3 + c]! + w4 * f[p4 + c]!;
      }
      const o = r * C * bins + b;
      for (let c = 0; c < C; c++) out[o + c * bins] = acc[c]! / samples;
    }
  }
  return out;
}
const pos = new Int32Array(49 * 4 * 4).map(() => Math.floor(Math.random() * (H * W - 1)));
const wts = new Float32Array(49 * 4 * 4).fill(0.25);
for (let k = 0; k < 3; k++) { let t = performance.now(); roiAlign({ data, channels: C, height: H, width: W }, rois, { outputSize: [7, 7], spatialScale: 0.25, samplingRatio: 2, aligned: false }); const a = performance.now() - t;
  t = performance.now(); const f = hwc(data, C, H, W); const tr = performance.now() - t; alignCL(f, C, H, W, rois, pos, wts, 4); console.log('direct', a.toFixed(0), 'transpose', tr.toFixed(0), 'CL total', (performance.now() - t).toFixed(0)); }
