/** Hand-built image bytes for bad-input tests. */

import { deflateSync } from 'node:zlib';

function crc32(bytes: Uint8Array): number {
  let c = ~0;
  for (const b of bytes) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1;
  }
  return ~c >>> 0;
}

/** One PNG chunk: length, type, data, CRC of type + data. */
function chunk(type: string, data: Uint8Array): Uint8Array {
  const body = new Uint8Array(4 + data.length);
  body.set(new TextEncoder().encode(type));
  body.set(data, 4);
  const out = new Uint8Array(12 + data.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, data.length);
  out.set(body, 4);
  dv.setUint32(8 + data.length, crc32(body));
  return out;
}

/**
 * A valid-looking PNG whose header claims width x height 8-bit RGB pixels but
 * whose data is a few hundred bytes of zeros: a decompression bomb, which must
 * be refused from the header, before any pixel is decoded.
 */
export function pngClaiming(width: number, height: number): Uint8Array {
  const ihdr = new Uint8Array(13);
  const dv = new DataView(ihdr.buffer);
  dv.setUint32(0, width);
  dv.setUint32(4, height);
  ihdr.set([8, 2, 0, 0, 0], 8); // 8-bit, RGB, deflate, no filter, no interlace
  const idat = deflateSync(new Uint8Array(4096));
  const parts = [Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a), chunk('IHDR', ihdr), chunk('IDAT', idat), chunk('IEND', new Uint8Array(0))];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** A 2 x 1 24-bit BMP: a real image in a format the service does not take. */
export function tinyBmp(): Uint8Array {
  const b = new Uint8Array(62);
  const dv = new DataView(b.buffer);
  b.set([0x42, 0x4d]);
  dv.setUint32(2, 62, true);
  dv.setUint32(10, 54, true);
  dv.setUint32(14, 40, true);
  dv.setInt32(18, 2, true);
  dv.setInt32(22, 1, true);
  dv.setUint16(26, 1, true);
  dv.setUint16(28, 24, true);
  dv.setUint32(34, 8, true);
  return b;
}

/**
 * A grey field around a grid of coloured squares (`island` px on a side, one
 * every `cell` px), raw RGB: selective search's worst case. Each square is a
 * region, and the field one region next to all of them, so every merge with
 * the field recomputes thousands of similarities (measured: 1000 x 1000, cell
 * 16, island 12: 4049 regions, 10 s for one strategy of `fast`'s eight).
 */
export function islandsImage(side: number, cell = 16, island = 12): { data: Uint8Array; width: number; height: number } {
  const data = new Uint8Array(side * side * 3).fill(128);
  for (let y = 0; y < side; y++) {
    for (let x = 0; x < side; x++) {
      if (x % cell >= island || y % cell >= island) continue;
      const c = (Math.floor(x / cell) * 31 + Math.floor(y / cell) * 17) % 200;
      for (let ch = 0; ch < 3; ch++) data[3 * (y * side + x) + ch] = (c + ch * 60) % 256;
    }
  }
  return { data, width: side, height: side };
}
