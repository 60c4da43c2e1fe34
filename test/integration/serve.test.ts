import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { fixturePath } from '../helpers/fixtures.js';

describe('rcnn-serve serve (a real listening process with its worker pool)', () => {
  it('becomes ready, detects over HTTP, and exits 0 on SIGTERM', async () => {
    const port = 20000 + Math.floor(Math.random() * 20000);
    const child = spawn(process.execPath, [fixturePath('..', '..', 'bin', 'rcnn-serve.js'), 'serve'], {
      env: { ...process.env, PORT: String(port), HOST: '127.0.0.1', WORKERS: '1', ORT_THREADS: '1', LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      const base = `http://127.0.0.1:${port}`;
      const deadline = Date.now() + 60_000;
      for (;;) {
        const ok = await fetch(`${base}/readyz`).then((r) => r.status === 200, () => false);
        if (ok) break;
        if (Date.now() > deadline) throw new Error(`not ready after 60 s; stderr: ${stderr}`);
        await new Promise((r) => setTimeout(r, 200));
      }
      const health = await fetch(`${base}/healthz`);
      expect(await health.json()).toEqual({ status: 'ok' });
      const form = new FormData();
      form.append('image', new Blob([readFileSync(fixturePath('images', 'shapes.png'))], { type: 'image/png' }), 'shapes.png');
      const res = await fetch(`${base}/v1/detect`, { method: 'POST', body: form });
      expect(res.status).toBe(200);
      const { results } = (await res.json()) as { results: { detections: unknown[] }[] };
      expect(results[0]!.detections.length).toBeGreaterThan(0);
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
  });
});

describe('rcnn-serve serve with no usable package', () => {
  it('reports each broken package and exits 1 with a clear message', async () => {
    const { cpSync, mkdtempSync, rmSync, writeFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const dir = mkdtempSync(join(tmpdir(), 'rcnn-serve-models-'));
    cpSync(fixturePath('..', '..', 'models', 'fixture-tiny-fpn'), join(dir, 'broken'), { recursive: true });
    writeFileSync(join(dir, 'broken', 'model.json'), '{"format": "rcnn-serve/model"}');
    const child = spawn(process.execPath, [fixturePath('..', '..', 'bin', 'rcnn-serve.js'), 'serve'], {
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
