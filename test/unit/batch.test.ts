import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collectInputs, InputError } from '../../src/batch/inputs.js';
import { JournalError, OutputJournal, readJournal } from '../../src/batch/journal.js';
import { createProgress } from '../../src/batch/progress.js';
import { backoffMs, parseRetryAfter } from '../../src/batch/retry.js';
import { runBatch } from '../../src/batch/run.js';
import { inShard, parseShard, shardOf } from '../../src/batch/shard.js';
import { Balancer, HttpTarget, type Target } from '../../src/batch/targets.js';
import { readCocoDataset } from '../../src/eval/coco-results.js';

let root: string;
beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'rcnn-serve-batch-unit-'));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

function touch(...parts: string[]): string {
  const path = join(root, ...parts);
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, 'x');
  return path;
}

describe('collectInputs', () => {
  it('walks folders recursively in sorted order, images only; globs; manifests relative to their folder; each path once', async () => {
    const b = touch('in', 'b.png');
    const a = touch('in', 'a.JPG');
    const deep = touch('in', 'sub', 'c.webp');
    touch('in', 'notes.txt');
    expect(await collectInputs([join(root, 'in')])).toEqual([a, b, deep]);
    expect(await collectInputs([join(root, 'in', '**', '*.webp')])).toEqual([deep]);
    writeFileSync(join(root, 'in', 'list.txt'), '# a comment\nb.png\n\nsub/c.webp\n');
    expect(await collectInputs([join(root, 'in', 'list.txt')])).toEqual([b, deep]);
    writeFileSync(join(root, 'list.jsonl'), `${JSON.stringify({ path: relative(root, a) })}\n${JSON.stringify(b)}\n`);
    expect(await collectInputs([join(root, 'list.jsonl'), a, join(root, 'in')])).toEqual([a, b, deep]);
  });

  it('says which input is wrong', async () => {
    await expect(collectInputs([join(root, 'missing')])).rejects.toThrow(InputError);
    await expect(collectInputs([join(root, 'in', '*.gif')])).rejects.toThrow(/matches no image/);
    writeFileSync(join(root, 'bad.jsonl'), '{"file": "x.png"}\n');
    await expect(collectInputs([join(root, 'bad.jsonl')])).rejects.toThrow(/bad.jsonl:1 has no "path"/);
  });
});

describe('shards', () => {
  it('parses i/n and refuses anything else', () => {
    expect(parseShard('2/5')).toEqual({ index: 2, count: 5 });
    for (const bad of ['5/5', '1/0', '-1/2', '1', 'a/b']) expect(() => parseShard(bad)).toThrow(RangeError);
  });

  it('puts each path in exactly one shard, evenly, whatever the order', () => {
    const paths = Array.from({ length: 3000 }, (_, i) => `images/${i}.jpg`);
    const sizes = [0, 1, 2].map((index) => paths.filter((p) => inShard(p, { index, count: 3 })).length);
    expect(sizes.reduce((x, y) => x + y)).toBe(3000);
    for (const s of sizes) expect(Math.abs(s - 1000)).toBeLessThan(100);
    expect(shardOf('images/7.jpg', 3)).toBe(shardOf('images/7.jpg', 3));
  });
});

describe('OutputJournal', () => {
  const record = (i: number) => ({ path: `img/${i}.png`, attempts: 1, error: { code: 'CORRUPT_IMAGE', message: 'x' } });

  it('refuses to overwrite a run without --resume', () => {
    const file = join(root, 'exists.jsonl');
    writeFileSync(file, `${JSON.stringify(record(0))}\n`);
    expect(() => OutputJournal.open(file, false)).toThrow(JournalError);
  });

  it('writes in groups, and a resumed run cuts a torn last line and appends after the whole ones', () => {
    const file = join(root, 'groups.jsonl');
    const j = OutputJournal.open(file, false, { groupSize: 3, flushMs: 60_000 });
    j.append(record(0));
    j.append(record(1));
    expect(readFileSync(file, 'utf8')).toBe(''); // still buffered
    j.append(record(2));
    expect(readJournal(file).length).toBe(3);
    j.append(record(3));
    j.close();
    writeFileSync(file, `${readFileSync(file, 'utf8')}{"path":"img/4.png","att`); // killed mid-write
    const resumed = OutputJournal.open(file, true);
    expect([...resumed.existing.keys()].map((k) => relative(process.cwd(), k))).toEqual([0, 1, 2, 3].map((i) => `img/${i}.png`));
    resumed.append(record(4));
    resumed.close();
    expect(readJournal(file).map((r) => r.path)).toEqual([0, 1, 2, 3, 4].map((i) => `img/${i}.png`));
    expect(readFileSync(file, 'utf8').endsWith('}\n')).toBe(true);
  });

  it('refuses a file that is not a batch output', () => {
    const file = join(root, 'other.jsonl');
    writeFileSync(file, '{"a": 1}\n');
    expect(() => OutputJournal.open(file, true)).toThrow(/not a batch output line/);
  });
});

describe('retry timing', () => {
  it('backs off exponentially with full jitter, capped, or waits what Retry-After says', () => {
    const policy = { retries: 5, baseMs: 100, maxMs: 1000 };
    expect(backoffMs(0, { ...policy, random: () => 0.999 })).toBeCloseTo(99.9);
    expect(backoffMs(3, { ...policy, random: () => 0.5 })).toBe(400);
    expect(backoffMs(10, { ...policy, random: () => 0.999 })).toBeCloseTo(999);
    expect(backoffMs(0, { ...policy, random: () => 0 })).toBe(0);
    expect(backoffMs(0, { ...policy, random: () => 0.5 }, 2000)).toBe(2050);
  });

  it('reads Retry-After as seconds or as a date', () => {
    expect(parseRetryAfter('3')).toBe(3000);
    expect(parseRetryAfter(new Date(10_000).toUTCString(), 4_000)).toBe(6000);
    expect(parseRetryAfter('soon')).toBeUndefined();
    expect(parseRetryAfter(null)).toBeUndefined();
  });
});

describe('Balancer', () => {
  const target = (name: string, outstanding = 0, downUntil = 0) => ({ name, outstanding, downUntil }) as Target;

  it('picks the target with the fewest requests in flight, ties in turn, and avoids one that just failed to connect', () => {
    const [a, b, c] = [target('a', 2), target('b', 1), target('c', 1)];
    const lb = new Balancer([a, b, c]);
    const picks = [lb.pick(), lb.pick(), lb.pick(), lb.pick()].map((t) => t.name);
    expect(picks.every((p) => p === 'b' || p === 'c')).toBe(true);
    expect(new Set(picks).size).toBe(2);
    b.downUntil = c.downUntil = Date.now() + 60_000;
    expect(lb.pick().name).toBe('a');
    a.downUntil = Date.now() + 60_000;
    expect(['b', 'c']).toContain(lb.pick().name); // all down: still the least loaded
  });
});

/**
 * A scripted stand-in for the server: answers each image (by its bytes, the test writes names) with the
 * statuses listed for it, then 200 with one detection for images whose name starts with "circle".
 */
async function scriptedServer(script: Record<string, { status: number; headers?: Record<string, string> }[]>) {
  const seen: { image: string; at: number }[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const image = Buffer.concat(chunks).toString();
      seen.push({ image, at: Date.now() });
      const next = script[image]?.shift();
      if (next) {
        res.writeHead(next.status, { 'content-type': 'application/json', ...next.headers });
        return res.end(JSON.stringify({ code: `CODE_${next.status}`, message: 'scripted', requestId: 'r' }));
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      const detections = image.startsWith('circle') ? [{ box: [1, 2, 11, 22], label: 'circle', classId: 1, score: 0.9 }] : [];
      res.end(JSON.stringify({ model: 'm', pipeline: 'faster-rcnn', image: { width: 40, height: 40 }, detections, timings: { total: 0 } }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const { port } = server.address() as { port: number };
  return { url: `http://127.0.0.1:${port}`, seen, close: () => new Promise<void>((r) => server.close(() => r())) };
}

describe('runBatch retries (a scripted server)', () => {
  it('retries 503 after Retry-After and 429 with backoff, never a 4xx for a bad image, and gives up after --retries', async () => {
    const dir = join(root, 'scripted');
    mkdirSync(dir, { recursive: true });
    for (const name of ['busy', 'limited', 'bad', 'down']) writeFileSync(join(dir, `${name}.png`), name);
    const server = await scriptedServer({
      busy: [{ status: 503, headers: { 'retry-after': '1' } }],
      limited: [{ status: 429 }, { status: 429 }],
      bad: [{ status: 422 }],
      down: [{ status: 504 }, { status: 504 }, { status: 504 }],
    });
    try {
      const out = join(root, 'scripted.jsonl');
      const summary = await runBatch({
        inputs: [dir],
        out,
        resume: false,
        concurrency: 4,
        retry: { retries: 2, baseMs: 20, maxMs: 100 },
        targets: [new HttpTarget(server.url, {}, { timeoutMs: 5000 })],
      });
      const byName = new Map(readJournal(out).map((r) => [r.path.slice(dir.length + 1, -4), r]));
      expect(byName.get('busy')).toMatchObject({ attempts: 2, result: { detections: [] } });
      expect(byName.get('limited')).toMatchObject({ attempts: 3, result: {} });
      expect(byName.get('bad')).toMatchObject({ attempts: 1, error: { code: 'CODE_422', status: 422 } });
      expect(byName.get('down')).toMatchObject({ attempts: 3, error: { code: 'CODE_504', status: 504 } });
      const busy = server.seen.filter((s) => s.image === 'busy');
      expect(busy[1]!.at - busy[0]!.at).toBeGreaterThanOrEqual(1000);
      expect(summary).toMatchObject({ total: 4, done: 2, failed: 2, retried: 5, failedInOutput: 2, interrupted: false });
    } finally {
      await server.close();
    }
  });
});

describe('runBatch --coco with --gt (a scripted server)', () => {
  it("takes image ids from the ground truth's file names and category ids from its names", async () => {
    const dir = join(root, 'coco');
    mkdirSync(join(dir, 'images'), { recursive: true });
    for (const name of ['circle-a', 'circle-b', 'empty']) writeFileSync(join(dir, 'images', `${name}.png`), name);
    const gt = join(dir, 'annotations.json');
    writeFileSync(gt, JSON.stringify({
      images: [{ id: 70, file_name: 'images/circle-a.png' }, { id: 71, file_name: 'images/circle-b.png' }, { id: 72, file_name: 'images/empty.png' }],
      annotations: [],
      categories: [{ id: 9, name: 'circle' }],
    }));
    const server = await scriptedServer({});
    try {
      const coco = join(dir, 'results.json');
      await runBatch({ inputs: [join(dir, 'images')], out: join(dir, 'out.jsonl'), resume: false, concurrency: 2, retry: { retries: 0, baseMs: 1, maxMs: 1 },
        targets: [new HttpTarget(server.url, {}, { timeoutMs: 5000 })], coco: { out: coco, gt: { dataset: await readCocoDataset(gt), path: gt } } });
      const results = JSON.parse(readFileSync(coco, 'utf8')) as { image_id: number; category_id: number; bbox: number[]; score: number }[];
      expect(results.sort((a, b) => a.image_id - b.image_id)).toEqual([
        { image_id: 70, category_id: 9, bbox: [1, 2, 10, 20], score: 0.9 },
        { image_id: 71, category_id: 9, bbox: [1, 2, 10, 20], score: 0.9 },
      ]);
    } finally {
      await server.close();
    }
  });
});

describe('progress', () => {
  const counts = { total: 10, skipped: 2, done: 5, failed: 1, retried: 3 };

  it('draws a bar with rate, ETA, failures and retries on a terminal, then the summary', async () => {
    const { PassThrough } = await import('node:stream');
    const stream = Object.assign(new PassThrough(), { isTTY: true, columns: 120, cursorTo: () => true, clearLine: () => true, moveCursor: () => true });
    let drawn = '';
    stream.on('data', (d: Buffer) => (drawn += d));
    const logged: string[] = [];
    const p = createProgress({ tty: true, log: (l) => logged.push(l), stream });
    p.update(counts);
    p.update({ ...counts, done: 6 });
    p.stop({ ...counts, done: 7 });
    expect(drawn).toMatch(/\d+\/10/);
    expect(drawn).toContain('img/s');
    expect(drawn).toContain('ETA');
    expect(drawn).toContain('failed 1');
    expect(drawn).toContain('retries 3');
    expect(logged.at(-1)).toMatch(/^batch: 7 done, 1 failed, 2 already written, 3 retries, 8 images in [\d.]+ s \([\d.]+ images\/s\)$/);
  });

  it('writes a line at most every interval elsewhere (logs, Kubernetes Jobs)', () => {
    const logged: string[] = [];
    const p = createProgress({ tty: false, log: (l) => logged.push(l), intervalMs: 0 });
    p.update(counts);
    expect(logged[0]).toMatch(/^batch: 8\/10 \(80\.0%\), [\d.]+ images\/s, ETA \S+, 1 failed, 3 retries$/);
    const quiet = createProgress({ tty: false, log: (l) => logged.push(l), intervalMs: 60_000 });
    quiet.update(counts);
    expect(logged.length).toBe(1);
  });
});
