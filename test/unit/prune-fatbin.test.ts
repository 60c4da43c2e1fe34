import { describe, expect, it } from 'vitest';
import { pruneFatbins } from '../../scripts/prune-fatbin.js';

const ENTRY_HEADER = 64;

/** A fat binary: its 16-byte header, then one entry per [architecture, payload size, fill byte]. */
function fatbin(entries: [number, number, number][]): Uint8Array {
  const size = entries.reduce((s, [, n]) => s + ENTRY_HEADER + n, 0);
  const out = new Uint8Array(16 + size);
  const v = new DataView(out.buffer);
  v.setUint32(0, 0xba55ed50, true);
  v.setUint16(4, 1, true);
  v.setUint16(6, 16, true);
  v.setBigUint64(8, BigInt(size), true);
  let at = 16;
  for (const [arch, n, fill] of entries) {
    v.setUint16(at, 2, true); // kind: ELF (machine code)
    v.setUint32(at + 4, ENTRY_HEADER, true);
    v.setBigUint64(at + 8, BigInt(n), true);
    v.setUint32(at + 28, arch, true);
    out.fill(fill, at + ENTRY_HEADER, at + ENTRY_HEADER + n);
    at += ENTRY_HEADER + n;
  }
  return out;
}

/** A minimal little-endian ELF64 file with the given sections (a null section and .shstrtab added). */
function elf(sections: Record<string, Uint8Array>): Uint8Array {
  const names = ['.shstrtab', ...Object.keys(sections)];
  const strtab = new TextEncoder().encode(`\0${names.join('\0')}\0`);
  const bodies = [strtab, ...Object.values(sections)];
  const offsets: number[] = [];
  let at = 64;
  for (const b of bodies) {
    offsets.push(at);
    at = Math.ceil((at + b.length) / 8) * 8;
  }
  const shoff = at;
  const out = new Uint8Array(shoff + 64 * (bodies.length + 1));
  const v = new DataView(out.buffer);
  out.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]);
  v.setBigUint64(0x28, BigInt(shoff), true);
  v.setUint16(0x3a, 64, true);
  v.setUint16(0x3c, bodies.length + 1, true);
  v.setUint16(0x3e, 1, true);
  let nameAt = 1;
  bodies.forEach((b, i) => {
    out.set(b, offsets[i]!);
    const h = shoff + 64 * (i + 1);
    v.setUint32(h, nameAt, true);
    v.setBigUint64(h + 24, BigInt(offsets[i]!), true);
    v.setBigUint64(h + 32, BigInt(b.length), true);
    nameAt += names[i]!.length + 1;
  });
  return out;
}

/** Two fat binaries (sm_80 and sm_90 kernels) with 8 bytes of padding between, as nvcc links them. */
function library(): { file: Uint8Array; section: Uint8Array } {
  const a = fatbin([[80, 40, 0xa1], [90, 24, 0xb1]]);
  const b = fatbin([[90, 16, 0xb2], [80, 32, 0xa2], [120, 8, 0xc2]]);
  const section = new Uint8Array(a.length + 8 + b.length);
  section.set(a);
  section.set(b, a.length + 8);
  return { file: elf({ '.text': new Uint8Array(40).fill(0x90), '.nv_fatbin': section }), section };
}

describe('pruneFatbins', () => {
  it('zeroes the payloads of the other architectures, in place, and keeps every header and the kept code', () => {
    const { file } = library();
    const before = file.slice();
    const report = pruneFatbins(file, new Set([90]));
    expect(report).toEqual({ architectures: { 80: 72, 90: 40, 120: 8 }, zeroedBytes: 80 });
    expect(file.length).toBe(before.length);
    const count = (f: Uint8Array, byte: number) => f.reduce((n, x) => n + (x === byte ? 1 : 0), 0);
    for (const gone of [0xa1, 0xa2, 0xc2]) expect(count(file, gone)).toBe(0);
    expect([count(file, 0xb1), count(file, 0xb2)]).toEqual([24, 16]);
    expect(count(file, 0x90)).toBe(40); // other sections untouched
    // Only payload bytes changed, and each to zero.
    let changed = 0;
    file.forEach((x, i) => {
      if (x === before[i]) return;
      expect(x).toBe(0);
      changed++;
    });
    expect(changed).toBe(80);
  });

  it('refuses, leaving the file as it was, an architecture the library has no code for, a file with no kernels and a non-ELF file', () => {
    const { file } = library();
    const before = file.slice();
    expect(() => pruneFatbins(file, new Set([100]))).toThrow('the library has no code for sm_100; it has sm_80, sm_90, sm_120');
    expect(Buffer.from(file).equals(Buffer.from(before))).toBe(true);
    expect(() => pruneFatbins(elf({ '.text': new Uint8Array(8) }), new Set([90]))).toThrow('no .nv_fatbin section');
    expect(() => pruneFatbins(new TextEncoder().encode('#!/bin/sh\necho not a library\n'), new Set([90]))).toThrow('not a little-endian 64-bit ELF file');
  });
});
