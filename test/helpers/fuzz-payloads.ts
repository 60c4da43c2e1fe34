/**
 * The service fuzz's payloads: whole raw HTTP/1.1 requests, seeded (fast-check
 * samples with a fixed seed, so a run is the same every time), in the
 * categories a hostile client tries. Each request says `Connection: close`
 * (where it is well formed enough to say anything), so one connection carries
 * one request.
 */

import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import sharp from 'sharp';
import { fixturePath } from './fixtures.js';
import { pngClaiming } from './images.js';

export interface FuzzRequest {
  category: string;
  bytes: Buffer;
  /**
   * Half-close after sending: the raw framing payloads, some of which cannot say Connection: close
   * (or promise more body than they carry), so the server closes when it has answered.
   */
  end?: boolean;
}

const ROUTES = ['/v1/detect', '/v1/render', '/v1/proposals'];
const TYPES = ['image/png', 'image/jpeg', 'image/webp', 'image/gif', 'application/octet-stream', 'text/plain', 'application/json', 'multipart/form-data', 'multipart/form-data; boundary=zz', ''];
const QUERY_KEYS = ['model', 'pipeline', 'scoreThreshold', 'iouThreshold', 'maxDetections', 'classes', 'boxFormat', 'normalized', 'mode', 'maxProposals', 'scales', 'format', 'method', 'minSize', 'seed', 'x', '__proto__', 'constructor'];
const ODD_VALUES = ['', '-1', '0', '1', '1e309', 'NaN', 'Infinity', '-0', '0x10', '1.5', '99999999999999999999', 'true', 'null', '[]', '{}', 'faster-rcnn', 'rcnn', 'fast-rcnn', 'single', 'multi', 'fast', 'quality', 'rpn', 'xywh', 'shapes-vgg', 'fixture-tiny-fpn', '%00', '%ZZ', '%C0%80', '..%2F..%2Fetc', 'é', '😀'];

/** A request: method, target, headers (Connection: close added), body. */
function request(method: string, target: string, headers: Record<string, string>, body: Buffer = Buffer.alloc(0)): Buffer {
  const lines = [`${method} ${target} HTTP/1.1`, 'Host: fuzz', 'Connection: close', ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)];
  if (!Object.keys(headers).some((k) => k.toLowerCase() === 'transfer-encoding')) lines.push(`Content-Length: ${body.length}`);
  return Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1'), body]);
}

function multipartBody(boundary: string, parts: { headers: string; data: Buffer }[], close = true): Buffer {
  const chunks: Buffer[] = [];
  for (const p of parts) chunks.push(Buffer.from(`--${boundary}\r\n${p.headers}\r\n\r\n`, 'latin1'), p.data, Buffer.from('\r\n'));
  if (close) chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return Buffer.concat(chunks);
}

/**
 * Sizes of the images to mutate: two ordinary ones, and the degenerate shapes that once gave 500s (a pixel, a
 * line, a thin strip either way: sides a resize can round to 0, anchors and RoIs narrower than a stride).
 */
const SEED_SIZES = [[64, 48], [96, 72], [1, 1], [1, 300], [300, 1], [2, 900], [900, 2], [5, 3]] as const;

/** Small real images to mutate: two photos and a scene, as PNG, JPEG and WebP, in each of SEED_SIZES. */
async function seedImages(): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for (const name of ['chelsea.png', 'coffee.png', 'shapes-val-000003.png']) {
    for (const [w, h] of SEED_SIZES) {
      const base = sharp(readFileSync(fixturePath('images', name))).resize(w, h, { fit: 'fill' });
      out.push(await base.clone().png().toBuffer(), await base.clone().jpeg().toBuffer(), await base.clone().webp().toBuffer());
    }
  }
  return out;
}

/** A query string of `keys` with odd values. */
const queryArb = (keys: string[]) =>
  fc
    .array(fc.tuple(fc.constantFrom(...keys), fc.oneof(fc.constantFrom(...ODD_VALUES), fc.string({ maxLength: 20 }), fc.double().map(String), fc.integer().map(String))), { maxLength: 5 })
    .map((pairs) => new URLSearchParams(pairs).toString());

/** Every payload of a run (10,603 requests in ten categories), from `seed`. */
export async function fuzzRequests(seed: number): Promise<FuzzRequest[]> {
  const seeds = await seedImages();
  const tiny = seeds[0]!;
  const sample = <T>(arb: fc.Arbitrary<T>, n: number, k: number) => fc.sample(arb, { seed: seed + k, numRuns: n });
  // Valid options, mostly the cheapest: every image is resized to the model's 512 px, so each run
  // costs about as much as a photo's, and the fuzz's time is in the runs that reach the pipelines.
  const safeQuery = fc.constantFrom('?scales=single', '?scales=single', '?scales=single', '?scales=single&scoreThreshold=0.5', '?pipeline=fast-rcnn&mode=single', '?pipeline=rcnn&mode=single&maxProposals=20', '?model=fixture-tiny-fpn', '');
  const out: FuzzRequest[] = [];
  const add = (category: string, list: (Buffer | { bytes: Buffer; end?: boolean })[]) => {
    for (const x of list) out.push(Buffer.isBuffer(x) ? { category, bytes: x } : { category, ...x });
  };

  // 1. Random bytes under every content type, to every inference route.
  add(
    'random bytes',
    sample(fc.tuple(fc.constantFrom(...ROUTES), fc.constantFrom(...TYPES), fc.uint8Array({ maxLength: 4096 })), 2000, 1).map(([route, type, body]) =>
      request('POST', route, type ? { 'Content-Type': type } : {}, Buffer.from(body)),
    ),
  );

  // 2. Real photos truncated, bit-flipped and spliced; most of those that still decode go to
  // selective search (single mode: milliseconds at this size), the rest to the detectors.
  const mutated = fc
    .tuple(fc.nat(seeds.length - 1), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 12 }), fc.option(fc.nat(), { freq: 2 }), fc.option(fc.nat()))
    .map(([s, flips, cut, spliceAt]) => {
      let b = Buffer.from(seeds[s]!);
      for (const [at, v] of flips) b[at % b.length] = v;
      if (spliceAt !== null) b = Buffer.concat([b.subarray(0, spliceAt % b.length), seeds[(s + 1) % seeds.length]!.subarray(spliceAt % 97)]);
      return cut === null ? b : b.subarray(0, cut % (b.length + 1));
    });
  add(
    'mutated images',
    sample(fc.tuple(fc.integer({ min: 0, max: 19 }), fc.constantFrom('image/png', 'image/jpeg', 'image/webp'), safeQuery, mutated), 2600, 2).map(([route, type, query, body]) =>
      request('POST', route < 14 ? '/v1/proposals?mode=single' : route < 19 ? `/v1/detect${query}` : `/v1/render${query}`, { 'Content-Type': type }, body),
    ),
  );

  // 3. Header bombs: many headers, one huge header, a huge URL, bad header bytes, duplicates.
  add(
    'header bombs',
    sample(
      fc.oneof(
        fc.integer({ min: 50, max: 3000 }).map((n) => request('GET', '/healthz', Object.fromEntries(Array.from({ length: n }, (_, i) => [`x-h${i}`, 'v'])))),
        fc.integer({ min: 8_000, max: 64_000 }).map((n) => request('GET', '/v1/models', { 'x-bomb': 'a'.repeat(n) })),
        fc.integer({ min: 8_000, max: 100_000 }).map((n) => request('GET', `/v1/models?${'a'.repeat(n)}`, {})),
        fc.constantFrom('\u0000', '\u0007', '\u00ff', '\r', 'é').map((c) => request('GET', '/healthz', { 'x-bad': `a${c}b` })),
        fc.constant(Buffer.from('POST /v1/detect HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nContent-Length: 5\r\nConnection: close\r\n\r\nabcd')),
        fc.constant(Buffer.from('GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n')),
      ),
      400,
      3,
    ),
  );

  // 4. Thin and huge images: real strips, header-only decompression bombs, one near the pixel limit.
  const thin = await Promise.all(
    sample(fc.tuple(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 600, max: 20_000 }), fc.boolean()), 150, 4).map(([short, long, wide]) =>
      sharp({ create: { width: wide ? long : short, height: wide ? short : long, channels: 3, background: '#7a6' } }).png().toBuffer(),
    ),
  );
  add('thin images', sample(fc.tuple(fc.nat(thin.length - 1), safeQuery, fc.constantFrom('/v1/detect', '/v1/render', '/v1/proposals?method=rpn')), 150, 5).map(([i, q, route]) => request('POST', `${route}${route.includes('?') ? '' : q}`, { 'Content-Type': 'image/png' }, thin[i]!)));
  add('huge images', sample(fc.tuple(fc.integer({ min: 1, max: 100_000 }), fc.integer({ min: 1, max: 100_000 })), 146, 6).map(([w, h]) => request('POST', '/v1/detect', { 'Content-Type': 'image/png' }, Buffer.from(pngClaiming(w, h)))));
  const nearLimit = await sharp({ create: { width: 2000, height: 2000, channels: 3, background: '#345' } }).png().toBuffer();
  add('huge images', [request('POST', '/v1/detect?scales=single', { 'Content-Type': 'image/png' }, nearLimit), request('POST', '/v1/detect?pipeline=fast-rcnn', { 'Content-Type': 'image/png' }, nearLimit), request('POST', '/v1/proposals', { 'Content-Type': 'image/png' }, nearLimit), request('POST', '/v1/detect', { 'Content-Type': 'image/png' }, Buffer.from(pngClaiming(2001, 2000)))]);

  // 5. Multipart malformations.
  const part = fc.record({
    name: fc.constantFrom('image', 'image', 'proposals', 'other', '', '"', 'image"; filename="x'),
    file: fc.boolean(),
    data: fc.oneof(fc.constant(tiny), fc.uint8Array({ maxLength: 512 }).map((b) => Buffer.from(b)), fc.json().map((j) => Buffer.from(j)), fc.constant(Buffer.from('[[1,2,3,4]]')), fc.constant(Buffer.from('[[0,0,1e309,5]]'))),
  });
  add(
    'multipart',
    sample(
      fc.tuple(fc.constantFrom('zz', 'a'.repeat(70), '', '--', '\u00e9'), fc.constantFrom('zz', 'zz', 'zz', 'yy'), fc.array(part, { maxLength: 12 }), fc.boolean(), fc.option(fc.nat()), fc.constantFrom('/v1/detect', '/v1/detect?pipeline=fast-rcnn&mode=single', '/v1/render', '/v1/proposals?mode=single', '/v1/proposals?method=rpn')),
      1500,
      7,
    ).map(([declared, used, parts, close, cut, route]) => {
      const headers = (p: { name: string; file: boolean }) => `Content-Disposition: form-data; name="${p.name}"${p.file ? '; filename="f.png"\r\nContent-Type: image/png' : ''}`;
      const body = multipartBody(used, parts.map((p) => ({ headers: headers(p), data: p.data })), close);
      return request('POST', route, { 'Content-Type': `multipart/form-data; boundary=${declared}` }, cut === null ? body : body.subarray(0, cut % (body.length + 1)));
    }),
  );
  // ... and more parts than allowed.
  add('multipart', [80, 81, 200].map((n) => request('POST', '/v1/detect', { 'Content-Type': 'multipart/form-data; boundary=zz' }, multipartBody('zz', Array.from({ length: n }, () => ({ headers: 'Content-Disposition: form-data; name="x"', data: Buffer.from('1') }))))));

  // 6. Bad query values on detect and render, over a valid image one time in six.
  add(
    'query values',
    sample(fc.tuple(fc.constantFrom('/v1/detect', '/v1/render'), queryArb(QUERY_KEYS), fc.nat(5)), 1600, 8).map(([route, q, withImage]) =>
      request('POST', `${route}?${q}`, { 'Content-Type': 'image/png' }, withImage === 0 ? tiny : Buffer.alloc(0)),
    ),
  );

  // 7. Proposals fields.
  add(
    'proposals fields',
    sample(fc.tuple(queryArb(['method', 'mode', 'maxProposals', 'minSize', 'seed', 'model']), fc.nat(2)), 700, 9).map(([q, withImage]) =>
      request('POST', `/v1/proposals?${q}`, { 'Content-Type': 'image/png' }, withImage === 0 ? tiny : Buffer.alloc(0)),
    ),
  );

  // 8. Model names: in the path, in the query, percent-encoded oddities, long ones.
  const name = fc.oneof(fc.string({ maxLength: 30 }).map(encodeURIComponent), fc.constantFrom('%ZZ', '%C0%80', '%00', '..%2F..%2Fetc%2Fpasswd', '..', 'shapes-vgg%20', 'SHAPES-VGG', '%E2%80%AE'), fc.integer({ min: 150, max: 600 }).map((n) => 'm'.repeat(n)));
  add(
    'model names',
    sample(fc.tuple(name, fc.nat(2)), 700, 10).map(([n, where]) =>
      where === 0 ? request('GET', `/v1/models/${n}`, {}) : where === 1 ? request('GET', `/v2/models/${n}/ready`, {}) : request('POST', `/v1/detect?model=${n}`, { 'Content-Type': 'image/png' }, tiny),
    ),
  );

  // 9. Explanations and feature views: odd selections, grids, budgets, boxes and layer names over a small image
  // (most refused before any pass; the rest explain a 64 x 48 image in a few squares), and odd model names for filters.
  const explainKeys = ['detection', 'top', 'box', 'label', 'patch', 'stride', 'maxPasses', 'heatmap', 'pipeline', 'scales', 'scoreThreshold', 'provenance', 'x'];
  const oddBox = fc.constantFrom('1,2,30,40', '0,0,64,48', '-5,-5,1e9,1e9', '1,2,3', '30,40,1,2', 'NaN,1,2,3', '1e309,0,1,1', ',,,', '0,0,0,0', '64,48,99,99');
  add(
    'explain and features',
    sample(
      fc.oneof(
        fc.tuple(queryArb(explainKeys), oddBox, fc.constantFrom('ring', 'circle', '', 'nope')).map(([q, box, label]) => request('POST', `/v1/explain?scales=single&maxPasses=64&${q}${q.includes('box') ? '' : `&box=${box}&label=${label}`}`, { 'Content-Type': 'image/png' }, tiny)),
        queryArb(explainKeys).map((q) => request('POST', `/v1/explain?scales=single&maxPasses=16&${q}`, { 'Content-Type': 'image/png' }, tiny)),
        fc.tuple(queryArb(['layer', 'channels', 'arrays', 'model', 'x']), fc.constantFrom('/backbone/trunk/body/body.2/Relu', '%2Fbackbone%2Ftrunk%2Fbody%2Fbody.3%2FMaxPool', '', 'Relu', 'a'.repeat(400), '%00')).map(([q, layer]) => request('POST', `/v1/features?layer=${layer}&${q}`, { 'Content-Type': 'image/png' }, tiny)),
        name.map((n) => request('GET', `/v1/models/${n}/filters`, {})),
      ),
      300,
      12,
    ),
  );

  // 10. Raw HTTP framing.
  const framing = fc.oneof(
    fc.uint8Array({ minLength: 1, maxLength: 300 }).map((b) => ({ bytes: Buffer.concat([Buffer.from(b), Buffer.from('\r\n\r\n')]) })),
    fc.constantFrom(
      'GET /healthz\r\n\r\n',
      'GET /healthz HTTP/9.9\r\nConnection: close\r\n\r\n',
      'GET /healthz HTTP/1.0\r\n\r\n',
      'BREW /healthz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n',
      'GET  /healthz  HTTP/1.1\r\nHost: a\r\n\r\n',
      'GET /healthz HTTP/1.1\nHost: a\nConnection: close\n\n',
      'GET /healthz HTTP/1.1\r\nHost: a\r\n folded: yes\r\nConnection: close\r\n\r\n',
      'POST /v1/detect HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Type: image/png\r\nConnection: close\r\n\r\nZZ\r\nabc\r\n0\r\n\r\n',
      'POST /v1/detect HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\nConnection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n',
      'POST /v1/detect HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\nConnection: close\r\n\r\n0\r\n\r\n',
      'POST /v1/detect HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\nConnection: close\r\n\r\n',
      'POST /v1/detect HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\nConnection: close\r\n\r\n',
      'GET /healthz HTTP/1.1\r\nHost: a\r\n\r\nGET /readyz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n',
      'GET http://evil.example/healthz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n',
      'GET * HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n',
      'OPTIONS * HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n',
      'GET /%%% HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n',
      'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n',
    ).map((t) => ({ bytes: Buffer.from(t, 'latin1') })),
    // A body shorter than its Content-Length, then the end of the stream.
    fc.integer({ min: 1, max: 5000 }).map((n) => ({ bytes: Buffer.concat([request('POST', '/v1/detect', { 'Content-Type': 'image/png' }, tiny).subarray(0, 200), Buffer.alloc(n % 50)]) })),
  );
  add('raw framing', sample(framing, 500, 11).map((f) => ({ ...f, end: true })));
  return out;
}
