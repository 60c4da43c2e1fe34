import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request as httpRequest, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { servedScoreThreshold } from '../../src/batch/targets.js';
import { fixturePath } from '../helpers/fixtures.js';
import { freePort, runCli, startServer, type ServerProcess } from '../helpers/processes.js';
import { TINY_FPN } from '../helpers/packages.js';

/**
 * The batch client against real servers (child processes, as deployed), on
 * 1000 generated images of which 50 are corrupt. The model is the tiny fixture
 * package set to 32-64 px inputs, so a run takes seconds; what is tested is
 * the client: nothing lost, nothing twice, nothing written sent again.
 */

const COUNT = 1000;
let root: string;
let images: string;
let models: string;
let server: ServerProcess;
const corrupt = new Set<string>();
const shaOf = new Map<string, string>();

interface Line {
  path: string;
  sha256?: string;
  attempts: number;
  result?: { detections: unknown[]; model: string; regions: number };
  error?: { code: string; message: string; status?: number };
}

function readLines(file: string): Line[] {
  const text = readFileSync(file, 'utf8');
  return text
    .slice(0, text.lastIndexOf('\n') + 1)
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Line);
}

/**
 * Every input image exactly once; the corrupt ones failed with the server's
 * code, the rest have results. With a server that stayed up, a bad image took
 * one attempt (a 4xx is never retried); through an outage it may have been
 * tried before the server could answer.
 */
function expectExactlyOnce(lines: Line[], serverStayedUp = true): void {
  const paths = lines.map((l) => l.path);
  expect(new Set(paths).size).toBe(paths.length);
  expect(paths.slice().sort()).toEqual([...shaOf.keys()].sort());
  for (const l of lines) {
    expect(l.sha256).toBe(shaOf.get(l.path));
    if (corrupt.has(l.path)) {
      expect(['UNSUPPORTED_FORMAT', 'CORRUPT_IMAGE']).toContain(l.error?.code);
      expect(l.error!.status).toBeGreaterThanOrEqual(400);
      expect(l.error!.status).toBeLessThan(500);
      if (serverStayedUp) expect(l.attempts).toBe(1);
    } else {
      expect(l.error).toBeUndefined();
      expect(Array.isArray(l.result?.detections)).toBe(true);
    }
  }
}

async function waitForLines(file: string, n: number, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let count = 0;
    try {
      count = readFileSync(file, 'utf8').split('\n').length - 1;
    } catch {}
    if (count >= n) return;
    if (Date.now() > deadline) throw new Error(`${file}: ${count} lines after ${timeoutMs} ms, waited for ${n}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A pass-through HTTP proxy that records the sha256 of every request body (the raw image) it forwards. */
function recordingProxy(target: string): Promise<{ url: string; sent: string[]; close: () => Promise<void> }> {
  const sent: string[] = [];
  const upstream = new URL(target);
  const proxy: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      sent.push(createHash('sha256').update(body).digest('hex'));
      const up = httpRequest({ host: upstream.hostname, port: upstream.port, path: req.url, method: req.method, headers: req.headers }, (r) => {
        res.writeHead(r.statusCode!, r.headers);
        r.pipe(res);
      });
      up.on('error', () => res.destroy());
      up.end(body);
    });
  });
  return new Promise((resolve) =>
    proxy.listen(0, '127.0.0.1', () => {
      const { port } = proxy.address() as { port: number };
      resolve({ url: `http://127.0.0.1:${port}`, sent, close: () => new Promise((r) => proxy.close(() => r())) });
    }),
  );
}

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'rcnn-serve-batch-'));
  images = join(root, 'images');
  models = join(root, 'models');
  // The fixture package, resized for 32 px inputs.
  cpSync(TINY_FPN, join(models, 'tiny'), { recursive: true });
  const manifest = JSON.parse(readFileSync(join(models, 'tiny', 'model.json'), 'utf8'));
  writeFileSync(join(models, 'tiny', 'model.json'), JSON.stringify({ ...manifest, name: 'tiny', input: { ...manifest.input, minSize: 32, maxSize: 64 } }));
  for (let i = 0; i < COUNT; i++) {
    const dir = join(images, `part-${i % 3}`); // folders are walked recursively
    mkdirSync(dir, { recursive: true });
    const path = join(dir, `${String(i).padStart(4, '0')}.png`);
    const pixels = Buffer.alloc(32 * 32 * 3);
    for (let j = 0; j < pixels.length; j++) pixels[j] = (j * 7 + i * 131 + ((j * i) % 17)) % 256;
    let bytes: Buffer = await sharp(pixels, { raw: { width: 32, height: 32, channels: 3 } }).png().toBuffer();
    if (i % 20 === 7) {
      // 5% corrupt: half random bytes, half a PNG cut short
      bytes = i % 40 === 7 ? createHash('sha512').update(String(i)).digest() : bytes.subarray(0, bytes.length >> 1);
      corrupt.add(path);
    }
    writeFileSync(path, bytes);
    shaOf.set(path, createHash('sha256').update(bytes).digest('hex'));
  }
  expect(new Set(shaOf.values()).size).toBe(COUNT); // the proxy test tells images apart by content
  server = await startServer(freePort(), { MODELS_DIR: models, WORKERS: '2' });
});

afterAll(async () => {
  server?.child.kill('SIGKILL');
  rmSync(root, { recursive: true, force: true });
});

describe('rcnn-serve batch against a server', () => {
  it('writes every image exactly once; corrupt ones fail with the server code and the exit status says so', async () => {
    const out = join(root, 'full.jsonl');
    const coco = join(root, 'full.coco.json');
    const run = await runCli(['batch', images, '--url', server.url, '--out', out, '--coco', coco]).done;
    expect(run.code).toBe(3); // finished, some images failed for good
    expect(run.stderr).toContain(`${COUNT - corrupt.size} done, ${corrupt.size} failed`);
    expectExactlyOnce(readLines(out));
    const results = JSON.parse(readFileSync(coco, 'utf8')) as { image_id: number }[];
    expect(results.length).toBe(readLines(out).reduce((n, l) => n + (l.result?.detections.length ?? 0), 0));
  });

  it("--coco asks the server for the model's evaluation threshold (a request's default is the display one)", async () => {
    const settings = { timeoutMs: 5000, tries: 1 };
    expect(await servedScoreThreshold([server.url], {}, settings)).toBe(0.05);
    await expect(servedScoreThreshold([server.url], { model: 'nope' }, settings)).rejects.toThrow('serves no model "nope"; it serves: tiny');
    await expect(servedScoreThreshold([server.url], { pipeline: 'rcnn' }, settings)).rejects.toThrow('model tiny has no rcnn pipeline');
    await expect(servedScoreThreshold(['http://127.0.0.1:9'], {}, settings)).rejects.toThrow('check --url, or give --score-threshold');
  });

  it('killed with SIGKILL at a random point, resumes: each image once, none that was written sent again', async () => {
    const out = join(root, 'killed.jsonl');
    const proxy = await recordingProxy(server.url);
    try {
      const first = runCli(['batch', images, '--url', proxy.url, '--out', out]);
      await waitForLines(out, 100 + Math.floor(Math.random() * 600));
      first.child.kill('SIGKILL');
      expect((await first.done).signal).toBe('SIGKILL');
      const written = readLines(out);
      expect(written.length).toBeLessThan(COUNT);
      proxy.sent.length = 0;
      const second = await runCli(['batch', images, '--url', proxy.url, '--out', out, '--resume']).done;
      expect(second.code).toBe(3); // the corrupt images
      expect(second.stderr).toContain(`${written.length} already written`);
      expectExactlyOnce(readLines(out));
      const resent = new Set(proxy.sent);
      expect(written.filter((l) => resent.has(l.sha256!))).toEqual([]);
      expect(proxy.sent.length).toBeGreaterThanOrEqual(COUNT - written.length);
    } finally {
      await proxy.close();
    }
  });

  it('carries the run through a server killed mid-run and restarted: nothing lost, retries counted', async () => {
    const port = freePort();
    let own = await startServer(port, { MODELS_DIR: models, WORKERS: '2' });
    const out = join(root, 'restart.jsonl');
    try {
      const run = runCli(['batch', images, '--url', own.url, '--out', out]);
      await waitForLines(out, 300);
      own.child.kill('SIGKILL');
      await own.exited;
      await new Promise((r) => setTimeout(r, 1000));
      own = await startServer(port, { MODELS_DIR: models, WORKERS: '2' });
      const done = await run.done;
      expect(done.code).toBe(3); // the corrupt images only
      expect(done.stderr).toMatch(/CONNECTION_ERROR/);
      expect(done.stderr).not.toMatch(/ 0 retries/);
      expectExactlyOnce(readLines(out), false);
    } finally {
      own.child.kill('SIGKILL');
    }
  });

  it('two shards of the same input are disjoint and together the whole input', async () => {
    const outs = [join(root, 'shard0.jsonl'), join(root, 'shard1.jsonl')];
    const runs = await Promise.all(outs.map((out, i) => runCli(['batch', images, '--url', server.url, '--out', out, '--shard', `${i}/2`, '--allow-failed']).done));
    expect(runs.map((r) => r.code)).toEqual([0, 0]); // as the Kubernetes Job runs it
    const [a, b] = outs.map((o) => readLines(o).map((l) => l.path));
    expect(a!.length).toBeGreaterThan(COUNT / 3);
    expect(b!.length).toBeGreaterThan(COUNT / 3);
    expect(a!.filter((p) => b!.includes(p))).toEqual([]);
    expectExactlyOnce(outs.flatMap(readLines));
  });

  it('--local gives the detections the server gives, from a manifest of paths', async () => {
    const picked = [...shaOf.keys()].filter((p) => !corrupt.has(p)).slice(0, 12);
    const manifest = join(root, 'manifest.jsonl');
    writeFileSync(manifest, picked.map((path) => JSON.stringify({ path })).join('\n'));
    const viaServer = join(root, 'm-server.jsonl');
    const viaLocal = join(root, 'm-local.jsonl');
    // The detect options of the option table, passed on as query parameters and as the detector's options alike.
    const options = ['--max-proposals', '20', '--scales', 'single', '--max-detections', '5', '--score-threshold', '0'];
    expect((await runCli(['batch', manifest, '--url', server.url, '--out', viaServer, ...options]).done).code).toBe(0);
    expect((await runCli(['batch', manifest, '--local', '--model', join(models, 'tiny'), '--workers', '1', '--out', viaLocal, ...options]).done).code).toBe(0);
    const detections = (file: string) => new Map(readLines(file).map((l) => [l.path, l.result!.detections]));
    expect(detections(viaLocal)).toEqual(detections(viaServer));
    for (const file of [viaServer, viaLocal]) {
      expect(readLines(file).map((l) => l.result!.regions)).toEqual(picked.map(() => 20));
      expect(readLines(file).every((l) => l.result!.detections.length === 5)).toBe(true);
    }
  });

  it('an option that would fail every image is a usage error before the run (exit 2), named as its flag', async () => {
    const out = join(root, 'refused.jsonl');
    const refused = async (...flags: string[]) => {
      const r = await runCli(['batch', images, '--url', server.url, '--out', out, ...flags]).done;
      expect(r.code).toBe(2);
      expect(existsSync(out)).toBe(false);
      return r.stderr;
    };
    expect(await refused('--mode', 'turbo')).toContain('--mode "turbo" is unknown; allowed: single, fast, quality, opencv-fast, opencv-quality');
    expect(await refused('--max-detections', '0')).toContain('--max-detections is 0; allowed: an integer from 1 to 10000');
    expect(await refused('--pipeline', 'faster-rcnn', '--mode', 'fast')).toContain('--mode is an rcnn, fast-rcnn option; faster-rcnn proposes with its RPN');
  });
});
