/**
 * The demo page in Debian's headless Chromium, driven as a person would:
 * an image in, the three generations side by side, the threshold and class
 * filter applied in the page, a detection explained, a layer's feature maps
 * shown. Screenshots go to test/artifacts/ (git-ignored)
 * on every run, to look at.
 */

import { mkdirSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import { chromium, type Browser, type Page } from 'playwright-core';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/http/app.js';
import { SHIPPED_MODELS_DIR } from '../../src/model/package.js';
import { scanModels } from '../../src/model/registry.js';
import { InferencePool } from '../../src/workers/inference-pool.js';
import { fixturePath } from '../helpers/fixtures.js';

const ARTIFACTS = fixturePath('..', 'artifacts');

let app: FastifyInstance;
let pool: InferencePool;
let browser: Browser;
let base: string;

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  pool = new InferencePool({ workers: 1, maxQueue: 8 });
  const settings = { device: 'cpu' as const, intraOpThreads: 1, limits: { maxBytes: 5 << 20, maxPixels: 4_000_000 }, featureLayers: true };
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

/** The page, with every API request it makes recorded as "METHOD path?query". */
async function openPage(viewport = { width: 1400, height: 1000 }): Promise<{ page: Page; requests: string[] }> {
  const page = await browser.newPage({ viewport });
  const requests: string[] = [];
  page.on('request', (r) => {
    const url = new URL(r.url());
    if (url.pathname.startsWith('/v1/')) requests.push(`${r.method()} ${url.pathname}${url.search}`);
  });
  await page.goto(`${base}/`);
  await expect.poll(() => page.locator('#classes .chip').count()).toBeGreaterThan(0);
  return { page, requests };
}

/** Each panel's listed detections: label and score. */
const listed = (page: Page, pipeline: string) =>
  page.locator(`.panel[data-pipeline="${pipeline}"] ol.detections li`).evaluateAll((items) => items.map((li) => ({ label: li.querySelector('.label')!.textContent!, score: Number(li.querySelector('.score')!.textContent) })));

describe('the demo page in headless Chromium', () => {
  it("says what the model detects: its classes, and for the default model that it knows synthetic shapes only", async () => {
    const { page } = await openPage();
    expect(await page.locator('#model').inputValue()).toBe('shapes-vgg');
    expect(await page.locator('#model option').allTextContents()).toEqual(['shapes-vgg']); // no test fixture offered
    expect(await page.locator('#classes .chip').allTextContents()).toEqual(['circle', 'square', 'triangle', 'star', 'cross', 'hexagon', 'ring', 'crescent']);
    expect(await page.locator('#domain').textContent()).toMatch(/detects only its 8 classes.*synthetic shapes.*export a COCO model/);
    expect(await page.locator('#threshold').inputValue()).toBe('0.5'); // the display threshold, as the API's default
    expect(await page.locator('#run').isDisabled()).toBe(true); // nothing to detect yet
    await page.close();
  });

  it('runs the three generations side by side, one request each; the threshold and class filter need none', async () => {
    const { page, requests } = await openPage();
    await page.setInputFiles('#image', fixturePath('images', 'shapes-val-000003.png'));
    await page.click('#run');
    await page.waitForFunction(() => document.querySelectorAll('.panel .summary .total').length === 3, undefined, { timeout: 60_000 });
    // One POST /v1/detect per generation, at the model's evaluation threshold; nothing else (no render).
    expect(requests.filter((r) => r.startsWith('POST')).sort()).toEqual(
      ['fast-rcnn', 'faster-rcnn', 'rcnn'].map((p) => `POST /v1/detect?model=shapes-vgg&pipeline=${p}&scoreThreshold=0.05&provenance=true`),
    );
    expect(await page.locator('.panel h2').evaluateAll((hs) => hs.map((h) => h.firstChild!.textContent))).toEqual(['R-CNN', 'Fast R-CNN', 'Faster R-CNN']);
    for (const pipeline of ['rcnn', 'fast-rcnn', 'faster-rcnn']) {
      const panel = page.locator(`.panel[data-pipeline="${pipeline}"]`);
      const size = await panel.locator('canvas').evaluate((c: HTMLCanvasElement) => [c.width, c.height]);
      expect(size).toEqual([355, 370]);
      expect(Number(await panel.locator('.regions').textContent())).toBeGreaterThan(0);
      expect(await panel.locator('.total').textContent()).toMatch(/^\d+ ms$/);
      expect(await panel.locator('.timings .bar').count()).toBeGreaterThanOrEqual(5); // decode ... postprocess
      const shown = await listed(page, pipeline);
      expect(shown.length).toBeGreaterThan(0);
      expect(shown.every((d) => d.score > 0.5)).toBe(true);
    }
    await page.screenshot({ path: `${ARTIFACTS}/demo-side-by-side.png`, fullPage: true });

    // The threshold: fewer rows above 0.9, more at the floor, all without a request.
    const before = requests.length;
    const at = async (value: number) => {
      await page.locator('#threshold').evaluate((input: HTMLInputElement, v) => {
        input.value = String(v);
        input.dispatchEvent(new Event('input'));
      }, value);
      return listed(page, 'faster-rcnn');
    };
    const high = await at(0.9);
    const low = await at(0.05);
    const mid = await at(0.5);
    expect(high.every((d) => d.score > 0.9)).toBe(true);
    expect(high.length).toBeLessThan(mid.length);
    expect(mid.length).toBeLessThan(low.length);
    expect(mid).toEqual(low.filter((d) => d.score > 0.5));
    // A class chip hides that class, and shows it again.
    const label = mid[0]!.label;
    await page.click(`#classes .chip[data-label="${label}"]`);
    expect((await listed(page, 'faster-rcnn')).some((d) => d.label === label)).toBe(false);
    expect(await page.locator(`#classes .chip[data-label="${label}"]`).getAttribute('aria-pressed')).toBe('false');
    await page.screenshot({ path: `${ARTIFACTS}/demo-filtered.png`, fullPage: true });
    await page.click(`#classes .chip[data-label="${label}"]`);
    expect(await listed(page, 'faster-rcnn')).toEqual(mid);
    expect(requests.length).toBe(before);
    await page.close();
  });

  it('on a photo, the display threshold shows a few boxes where the evaluation threshold would draw dozens', async () => {
    const { page } = await openPage();
    await page.setInputFiles('#image', fixturePath('images', 'chelsea.png'));
    await page.click('#run');
    await page.waitForFunction(() => document.querySelectorAll('.panel .summary .total').length === 3, undefined, { timeout: 60_000 });
    for (const pipeline of ['rcnn', 'fast-rcnn', 'faster-rcnn']) {
      const summary = await page.locator(`.panel[data-pipeline="${pipeline}"] .summary`).textContent();
      const [, shown, all] = /^(\d+) of (\d+) detections shown/.exec(summary!)!.map(Number);
      // Measured on chelsea.png: 5, 6 and 6 shown at 0.5, of 100, 68 and 76 at 0.05.
      expect(shown, summary!).toBeLessThanOrEqual(10);
      expect(all, summary!).toBeGreaterThan(4 * shown!);
    }
    await page.screenshot({ path: `${ARTIFACTS}/demo-photo.png`, fullPage: true });
    await page.close();
  });

  it('one generation gets the whole width, the list beside the picture; on a phone-sized screen it stacks', async () => {
    const { page, requests } = await openPage({ width: 1200, height: 900 });
    await page.uncheck('#gen-rcnn');
    await page.uncheck('#gen-fast-rcnn');
    await page.setInputFiles('#image', fixturePath('images', 'shapes.png'));
    await page.click('#run');
    await page.waitForSelector('.panel .summary .total', { timeout: 30_000 });
    expect(requests.filter((r) => r.startsWith('POST'))).toEqual(['POST /v1/detect?model=shapes-vgg&pipeline=faster-rcnn&scoreThreshold=0.05&provenance=true']);
    const beside = async () => {
      const picture = await page.locator('.panel canvas').boundingBox();
      const list = await page.locator('.panel ol.detections').boundingBox();
      return list!.x >= picture!.x + picture!.width - 1;
    };
    expect(await beside()).toBe(true);
    await page.setViewportSize({ width: 420, height: 900 });
    expect(await beside()).toBe(false);
    await page.screenshot({ path: `${ARTIFACTS}/demo-phone.png`, fullPage: true });
    await page.close();
  });

  it('a click on a detection shows its occlusion map, source region and provenance; a layer, its feature maps beside the first filters', async () => {
    const { page, requests } = await openPage();
    await page.setInputFiles('#image', fixturePath('images', 'shapes-val-000003.png'));
    await page.uncheck('#gen-rcnn');
    await page.uncheck('#gen-faster-rcnn');
    await page.click('#run');
    await page.waitForFunction(() => document.querySelectorAll('.panel .summary .total').length === 1, undefined, { timeout: 60_000 });
    await page.click('.panel[data-pipeline="fast-rcnn"] ol.detections li >> nth=0');
    await page.waitForSelector('#explain-summary .passes', { timeout: 60_000 });
    const explainRequest = requests.find((r) => r.startsWith('POST /v1/explain'))!;
    const query = new URL(`http://x${explainRequest.slice(5)}`).searchParams;
    expect(Object.fromEntries(query)).toMatchObject({ model: 'shapes-vgg', pipeline: 'fast-rcnn', label: expect.any(String), patch: '36', stride: '36' });
    expect(Number(await page.locator('#explain-summary .passes').textContent())).toBe(10 * 11); // 355 x 370 in 36-pixel squares, the last at each edge
    expect(Number(await page.locator('#explain-summary .peak').textContent())).toBeGreaterThan(0.2);
    const provenance = await page.locator('#provenance dt').allTextContents();
    expect(provenance).toEqual(['source region', 'rank', 'proposed by', 'strategy', 'hierarchy']);
    expect(await page.locator('#provenance dd >> nth=2').textContent()).toBe('selective search');
    // The map is drawn: the canvas holds red where the object is.
    const reddest = await page.locator('#explain-canvas').evaluate((c: HTMLCanvasElement) => {
      const data = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
      let most = 0;
      for (let i = 0; i < data.length; i += 4) most = Math.max(most, data[i]! - Math.max(data[i + 1]!, data[i + 2]!));
      return most;
    });
    expect(reddest).toBeGreaterThan(100);
    await page.locator('#explain').screenshot({ path: `${ARTIFACTS}/demo-explain.png` });

    // Feature views: the layers listed, a layer's maps fetched and shown, the filters beside them.
    expect(await page.locator('#layer option').count()).toBe(9);
    await page.selectOption('#layer', { index: 2 });
    await page.click('#show-layer');
    await page.waitForFunction(() => (document.getElementById('layer-maps') as HTMLImageElement).naturalWidth > 0, undefined, { timeout: 30_000 });
    await expect.poll(() => page.locator('#first-filters').evaluate((img: HTMLImageElement) => img.naturalWidth)).toBeGreaterThan(0);
    expect(await page.locator('#layer-caption').textContent()).toMatch(/^The 8 strongest channels of \/backbone\/trunk\/body\/body\.6\/Relu \(channels [\d,]+\)/);
    expect(requests.filter((r) => r.startsWith('POST /v1/features'))).toHaveLength(1);
    await page.locator('#features').screenshot({ path: `${ARTIFACTS}/demo-features.png` });
    await page.close();
  });

  it("refuses what the browser cannot read before any request, and shows the server's error for what the server refuses", async () => {
    const { page, requests } = await openPage();
    await page.setInputFiles('#image', { name: 'fake.png', mimeType: 'image/png', buffer: Buffer.from('not a png') });
    await expect.poll(() => page.locator('#status').textContent()).toMatch(/cannot read fake\.png as an image/);
    expect(await page.locator('#run').isDisabled()).toBe(true);
    // A GIF: the browser draws it, the server takes JPEG, PNG and WebP only.
    const gif = await sharp({ create: { width: 64, height: 48, channels: 3, background: { r: 200, g: 80, b: 40 } } }).gif().toBuffer();
    await page.setInputFiles('#image', { name: 'small.gif', mimeType: 'image/gif', buffer: gif });
    await page.uncheck('#gen-rcnn');
    await page.uncheck('#gen-fast-rcnn');
    await page.click('#run');
    await expect.poll(() => page.locator('#status').textContent()).toMatch(/1 of 1 failed: UNSUPPORTED_MEDIA_TYPE: /);
    expect(await page.locator('.panel.failed .summary').textContent()).toMatch(/^UNSUPPORTED_MEDIA_TYPE: .*image\/jpeg/);
    expect(requests.filter((r) => r.startsWith('POST'))).toHaveLength(1);
    await page.close();
  });
});
