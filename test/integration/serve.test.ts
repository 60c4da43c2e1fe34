import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { fixturePath } from '../helpers/fixtures.js';
import { TINY_FPN } from '../helpers/packages.js';
import { CLI, freePort, startServer } from '../helpers/processes.js';

describe('rcnn-serve serve (a real listening process with its worker pool)', () => {
  it('becomes ready, serves the shipped model only, detects over HTTP, and exits 0 on SIGTERM', async () => {
    const server = await startServer(freePort());
    try {
      const health = await fetch(`${server.url}/healthz`);
      expect(await health.json()).toEqual({ status: 'ok' });
      // The test packages (fixture-tiny-fpn) live with the tests: a user is never offered them.
      const { models } = (await (await fetch(`${server.url}/v1/models`)).json()) as { models: { name: string }[] };
      expect(models.map((m) => m.name)).toEqual(['shapes-vgg']);
      const form = new FormData();
      form.append('image', new Blob([readFileSync(fixturePath('images', 'shapes.png'))], { type: 'image/png' }), 'shapes.png');
      const res = await fetch(`${server.url}/v1/detect`, { method: 'POST', body: form });
      expect(res.status).toBe(200);
      const { results } = (await res.json()) as { results: { detections: unknown[] }[] };
      expect(results[0]!.detections.length).toBeGreaterThan(0);
    } finally {
      server.child.kill('SIGTERM');
    }
    expect(await server.exited).toBe(0);
  });
});

describe('rcnn-serve serve with no usable package', () => {
  it('reports each broken package and exits 1 with a clear message', async () => {
    const { cpSync, mkdtempSync, rmSync, writeFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const dir = mkdtempSync(join(tmpdir(), 'rcnn-serve-models-'));
    cpSync(TINY_FPN, join(dir, 'broken'), { recursive: true });
    writeFileSync(join(dir, 'broken', 'model.json'), '{"format": "rcnn-serve/model"}');
    const child = spawn(process.execPath, [CLI, 'serve'], {
      env: { ...process.env, PORT: '0', HOST: '127.0.0.1', WORKERS: '1', MODELS_DIR: dir, LOG_LEVEL: 'fatal' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    rmSync(dir, { recursive: true, force: true });
    expect(code).toBe(1);
    expect(stderr).toContain('START: no usable model package under');
    expect(stderr).toContain('version is missing');
  });
});

describe('rcnn-serve serve on a port it cannot have', () => {
  it('says the port is in use and what to do, and exits 1 before loading any model', async () => {
    const { createServer } = await import('node:net');
    const holder = createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    const port = (holder.address() as { port: number }).port;
    try {
      const child = spawn(process.execPath, [CLI, 'serve'], {
        env: { ...process.env, PORT: String(port), HOST: '127.0.0.1', WORKERS: '1', LOG_LEVEL: 'info' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let output = '';
      child.stdout.on('data', (d) => (output += d));
      child.stderr.on('data', (d) => (output += d));
      const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
      expect(code).toBe(1);
      expect(output).toContain(`error: START: port ${port} on 127.0.0.1 is in use (EADDRINUSE): stop what listens there, or set PORT to a free port`);
      expect(output).not.toContain('loaded and warm'); // it failed before the models, not after them
    } finally {
      holder.close();
    }
  });
});

/** `serve` with its info log on stdout: the log's lines up to the ready line. */
function serveLogging(env: Record<string, string>) {
  const child = spawn(process.execPath, [CLI, 'serve'], {
    env: { ...process.env, HOST: '127.0.0.1', ORT_THREADS: '1', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  const logUntilReady = async () => {
    const deadline = Date.now() + 60_000;
    while (!output.includes('"msg":"ready:') && Date.now() < deadline && child.exitCode === null) await new Promise((r) => setTimeout(r, 100));
    return output.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { level: number; msg: string; demo?: string });
  };
  return { child, exited, logUntilReady };
}

describe('rcnn-serve serve start-up log', () => {
  it('says what each model detects, and where the demo page, the docs and the metrics are', async () => {
    const port = freePort();
    const { child, exited, logUntilReady } = serveLogging({ PORT: String(port), WORKERS: '1' });
    try {
      const lines = await logUntilReady();
      expect(lines.map((l) => l.msg)).toContain('model shapes-vgg loaded and warm; it detects 8 classes: circle, square, triangle, star, cross, hexagon, ring, crescent');
      expect(lines.map((l) => l.msg)).toContain(
        'shapes-vgg, the default model, detects only its 8 synthetic shapes (circle, square, triangle, star, cross, hexagon, ring, crescent); ' +
          'for photos, export a COCO model (README: "A COCO model from torchvision") and point MODELS_DIR at the folder that holds it',
      );
      const ready = lines.find((l) => l.msg.startsWith('ready:'))!;
      expect(ready.msg).toBe(`ready: the demo page at http://127.0.0.1:${port}/, the API docs at http://127.0.0.1:${port}/docs, metrics at http://127.0.0.1:${port}/metrics`);
      expect((await fetch(ready.demo!)).status).toBe(200);
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
  });
});

describe('rcnn-serve serve with DEVICE=cuda where CUDA cannot be used', () => {
  // No CUDA device is visible to the server, on any host: where no CUDA provider loads (this project's
  // machines) and where one does (a GPU host), the fallback is what runs.
  const noGpu = { CUDA_VISIBLE_DEVICES: '' };

  it('runs on the CPU and says why once, from two workers; with DEVICE_FALLBACK=error it refuses to start', async () => {
    const { child, exited, logUntilReady } = serveLogging({ PORT: String(freePort()), WORKERS: '2', DEVICE: 'cuda', ...noGpu });
    try {
      const lines = await logUntilReady();
      const warnings = lines.filter((l) => l.msg.startsWith('CUDA execution provider unavailable'));
      expect(warnings).toHaveLength(1);
      expect(warnings[0]!.level).toBe(40); // warn
      expect(warnings[0]!.msg).toContain('running on the CPU');
      expect(lines.some((l) => l.msg.startsWith('ready:'))).toBe(true);
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);

    const refusing = spawn(process.execPath, [CLI, 'serve'], {
      env: { ...process.env, PORT: '0', HOST: '127.0.0.1', WORKERS: '1', LOG_LEVEL: 'fatal', DEVICE: 'cuda', DEVICE_FALLBACK: 'error', ...noGpu },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    refusing.stderr.on('data', (d) => (stderr += d));
    expect(await new Promise<number | null>((resolve) => refusing.on('exit', (c) => resolve(c)))).toBe(1);
    expect(stderr).toContain('START: no usable model package under');
    expect(stderr).toContain('CUDA execution provider unavailable');
    expect(stderr).toContain('the CPU fallback is refused (device fallback: error)');
  }, 120_000);
});
