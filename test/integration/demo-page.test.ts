import type { FastifyInstance } from 'fastify';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/http/app.js';
import { SHIPPED_MODELS_DIR } from '../../src/model/package.js';
import { scanModels } from '../../src/model/registry.js';
import { InferencePool } from '../../src/workers/inference-pool.js';
import { fixturePath } from '../helpers/fixtures.js';

let app: FastifyInstance;
let pool: InferencePool;
let browser: Browser;
let base: string;

beforeAll(async () => {
  pool = new InferencePool({ workers: 1, maxQueue: 8 });
  const settings = { device: 'cpu' as const, intraOpThreads: 1, limits: { maxBytes: 5 << 20, maxPixels: 4_000_000 } };
  app = await buildApp({ registry: await scanModels(SHIPPED_MODELS_DIR), pool, settings, maxBodyBytes: 5 << 20, ready: () => true });
  base = await app.listen({ port: 0, host: '127.0.0.1' });
  // Debian's chromium (installed by .ci/run); no browser download.
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});
afterAll(async () => {
  await browser?.close();
  await app?.close();
  await pool?.close();
});

describe('the demo page in headless Chromium', () => {
  it('uploads a fixture image and shows the drawn boxes and a table of detections', async () => {
    const page = await browser.newPage();
    await page.goto(`${base}/`);
    await expect.poll(() => page.locator('#model option').count()).toBeGreaterThan(0);
    expect(await page.locator('#pipeline').inputValue()).toBe('faster-rcnn');
    await page.selectOption('#pipeline', 'rcnn');
    await page.setInputFiles('#image', fixturePath('images', 'shapes-val-000003.png'));
    await page.click('#run');
    await page.waitForSelector('#detections tr:nth-child(2)', { timeout: 30_000 });
    const size = await page.locator('#result img').evaluate((img: HTMLImageElement) => img.decode().then(() => [img.naturalWidth, img.naturalHeight]));
    expect(size).toEqual([355, 370]);
    expect(await page.locator('#detections tr').count()).toBeGreaterThan(1);
    expect(await page.locator('#status').textContent()).toMatch(/detection\(s\) in \d+ ms/);
    // DEMO_SCREENSHOT=/tmp/demo.png saves what the page showed, to look at.
    if (process.env.DEMO_SCREENSHOT) await page.screenshot({ path: process.env.DEMO_SCREENSHOT });
    await page.close();
  });
});
