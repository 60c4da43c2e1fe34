/**
 * The README's commands run as written. Every line of its `sh` blocks is run
 * by bash in a scratch folder that holds the files the examples name
 * (photo.jpg is a real photo, images/ and annotations.json a small synthetic
 * set, photos/ a folder of images); a line that starts a server (`serve`)
 * runs in the background for the lines after it. Two things stand in for
 * what the README assumes of a reader's machine: `npx rcnn-serve` runs this
 * checkout's bin (npx finds a project's own bin only in the project's folder),
 * and the server's port 8080 becomes a free one. The lines that need what a
 * test machine lacks are listed in NOT_RUN with why and what checks them
 * instead. `npm run` lines run in the checkout, whose package.json has the
 * scripts.
 */

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, freePort } from '../helpers/processes.js';
import { fixturePath } from '../helpers/fixtures.js';

const REPO = fixturePath('..', '..');
const README = readFileSync(join(REPO, 'README.md'), 'utf8');

/** The lines of the README's `sh` blocks, block by block, comments dropped. */
function shellBlocks(markdown: string): string[][] {
  return [...markdown.matchAll(/^```sh\n([\s\S]*?)^```$/gm)].map((m) =>
    m[1]!
      .split('\n')
      .map((line) => line.replace(/\s+#\s.*$/, '').trim())
      .filter(Boolean),
  );
}

/** Lines not run here: what each needs, and the check that covers it. */
const NOT_RUN: [RegExp, string][] = [
  [/^npm install && npm start$/, 'the set-up itself: .ci/run runs npm ci, then npm start and a detection against it, on a clean clone'],
  [/^npm test$/, 'it runs this test'],
  [/--weights DEFAULT/, "downloads torchvision's weights, and no test machine has the network; npm run test:backbones exports the same architectures with seeded weights"],
  [/exported\/(frcnn-r50-fpn-coco|vgg16-voc)|^MODELS_DIR=exported npm start$/, 'needs the --weights DEFAULT export above; serve.test serves a MODELS_DIR of packages'],
  [/^docker (build|run)/, 'needs a Docker engine: npm run test:image builds and runs the image (.ci/run)'],
  [/^docker compose/, 'npm run test:compose brings compose.yaml up and runs its batch job (.ci/run)'],
  [/^docker swarm|docker stack deploy|^docker service update/, 'npm run test:swarm deploys stack.yaml, kills a replica and rolls the service (.ci/run)'],
  [/^kubectl /, 'no Kubernetes server runs here: deploy.test checks the manifests against the Kubernetes schemas'],
  [/--url http:\/\/(a|b|svc)[:/]/, 'a, b and svc stand for servers of yours; batch.test runs shards and servers that die mid-run'],
  [/models quantize shapes-vgg --calibration images --count 32|exported\/shapes-vgg-int8/, 'calibrating on 32 images takes minutes, and the scratch folder holds 2; quantize.test runs the command on eight tiles, and inspects its package'],
];

/** The files and folders the examples name, made in the scratch folder. */
async function scratchFolder(): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'rcnn-serve-readme-'));
  const images = (name: string) => fixturePath('images', name);
  await sharp(images('chelsea.png')).jpeg({ quality: 90 }).toFile(join(dir, 'photo.jpg'));
  cpSync(images('coffee.png'), join(dir, 'other.png'));
  cpSync(images('coffee.png'), join(dir, 'photo.png'));
  mkdirSync(join(dir, 'photos', 'more'), { recursive: true });
  cpSync(join(dir, 'photo.jpg'), join(dir, 'photos', 'cat.jpg'));
  cpSync(images('shapes.png'), join(dir, 'photos', 'shapes.png'));
  cpSync(images('shapes-val-000011.png'), join(dir, 'photos', 'more', 'shapes-val-000011.png'));
  writeFileSync(join(dir, 'boxes.json'), JSON.stringify([[100, 50, 300, 250], [0, 0, 200, 150], [150, 80, 451, 300]]));
  // images/*.jpg with their annotations.json: the dataset command's own layout.
  const made = spawnSync(process.execPath, [CLI, 'dataset', '--seed', '9', '--count', '2', '--out', dir], { encoding: 'utf8' });
  if (made.status !== 0) throw new Error(made.stderr);
  // The repository's files that examples name by path (test/fixtures/...).
  cpSync(join(REPO, 'test', 'fixtures', 'images'), join(dir, 'test', 'fixtures', 'images'), { recursive: true });
  cpSync(join(REPO, 'test', 'fixtures', 'packages'), join(dir, 'test', 'fixtures', 'packages'), { recursive: true });
  symlinkSync(join(REPO, 'models'), join(dir, 'models'));
  // npx rcnn-serve: this checkout's bin; any other npx call goes to npm's own.
  mkdirSync(join(dir, '.bin'));
  writeFileSync(join(dir, '.bin', 'npx'), `#!/bin/sh\nif [ "$1" = rcnn-serve ]; then shift; exec "${process.execPath}" "${CLI}" "$@"; fi\nexec "${whichNpx()}" "$@"\n`, { mode: 0o755 });
  return dir;
}

function whichNpx(): string {
  return spawnSync('sh', ['-c', 'command -v npx'], { encoding: 'utf8' }).stdout.trim();
}

const startsServer = (line: string) => / serve$/.test(line);

const hasTorch = () => spawnSync('/usr/bin/python3', ['-c', 'import torch, torchvision, onnx'], { stdio: 'ignore' }).status === 0;

let dir: string;
let port: number;
let server: ChildProcess | undefined;

const env = () => ({ ...process.env, PYTHONDONTWRITEBYTECODE: '1', PATH: `${join(dir, '.bin')}:${process.env.PATH}`, PORT: String(port), HOST: '127.0.0.1', WORKERS: '1', LOG_LEVEL: 'warn' });
const asWritten = (line: string) => line.replaceAll('localhost:8080', `127.0.0.1:${port}`);

function runLine(line: string) {
  // npm run needs the project's package.json: its scripts run in the checkout.
  const cwd = line.startsWith('npm run ') ? REPO : dir;
  const r = spawnSync('bash', ['-c', asWritten(line)], { cwd, env: env(), encoding: 'utf8', timeout: 180_000, maxBuffer: 64 << 20 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

async function startServer(line: string): Promise<void> {
  server = spawn('bash', ['-c', `exec ${asWritten(line)}`], { cwd: dir, env: env(), stdio: 'ignore' });
  const deadline = Date.now() + 60_000;
  while (!(await fetch(`http://127.0.0.1:${port}/readyz`).then((r) => r.ok, () => false))) {
    if (server.exitCode !== null || Date.now() > deadline) throw new Error(`${line}: the server did not become ready`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

beforeAll(async () => {
  dir = await scratchFolder();
  port = freePort();
});
afterAll(() => {
  server?.kill('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
});

describe("the README's commands", () => {
  const blocks = shellBlocks(README);

  it('leaves out only the listed lines, and each listed entry still names a README line', () => {
    const run = blocks.flat().filter((line) => !NOT_RUN.some(([re]) => re.test(line)));
    expect(run.length).toBeGreaterThanOrEqual(20);
    for (const [re, why] of NOT_RUN) expect(blocks.flat().some((line) => re.test(line)), why).toBe(true);
  });

  blocks.forEach((block, b) => {
    it(`block ${b + 1}: ${block[0]}`, { timeout: 600_000 }, async () => {
      try {
        // Lines that talk to localhost:8080 in a block that starts no server of its own: the README's server is up.
        if (block.some((line) => line.includes('localhost:8080') && !NOT_RUN.some(([re]) => re.test(line))) && !block.some(startsServer)) {
          await startServer('npx rcnn-serve serve');
        }
        for (const line of block) {
          if (NOT_RUN.some(([re]) => re.test(line))) continue;
          if (/^\S*python3 /.test(line) && !hasTorch()) {
            console.warn(`not run, no torch, torchvision and onnx for /usr/bin/python3 here: ${line}`);
            continue;
          }
          if (startsServer(line)) {
            await startServer(line);
            continue;
          }
          const r = runLine(line);
          expect(r.status, `${line}\n${r.stderr}`).toBe(0);
          // curl exits 0 on an HTTP error: its body must be a result, not the error envelope.
          if (line.startsWith('curl ')) expect(JSON.parse(r.stdout), line).not.toHaveProperty('code');
        }
      } finally {
        server?.kill('SIGTERM');
        server = undefined;
      }
    });
  });

  it('the --json sample is what the command above it prints (fields, regions, the first detection)', () => {
    const sample = /^```json\n([\s\S]*?)^```$/m.exec(README.slice(README.indexOf('`--json` prints one line per image')))![1]!;
    const expected = JSON.parse(sample.replace(', ...]', ']'));
    const r = runLine(`npx rcnn-serve detect ${expected.path} --pipeline ${expected.pipeline} --json`);
    expect(r.status).toBe(0);
    const actual = JSON.parse(r.stdout);
    expect(Object.keys(actual)).toEqual(Object.keys(expected));
    expect(Object.keys(actual.timings)).toEqual(Object.keys(expected.timings));
    expect({ ...actual, detections: undefined, timings: undefined }).toEqual({ ...expected, detections: undefined, timings: undefined });
    const [first] = actual.detections;
    const [documented] = expected.detections;
    expect({ label: first.label, classId: first.classId }).toEqual({ label: documented.label, classId: documented.classId });
    first.box.forEach((v: number, k: number) => expect(v).toBeCloseTo(documented.box[k], 1));
    expect(first.score).toBeCloseTo(documented.score, 3);
    expect(README).toContain(`one detection of its ${actual.detections.length} shown`);
  });

  it('exports go to exported/, which git ignores, and nothing is exported into models/', () => {
    const lines = blocks.flat().filter((line) => line.includes('--out') && /export_\w+\.py/.test(line));
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) expect(line).toMatch(/--out exported\//);
    expect(readFileSync(join(REPO, '.gitignore'), 'utf8').split('\n')).toContain('/exported/');
    expect(existsSync(join(REPO, 'models', 'frcnn-r50-fpn-coco'))).toBe(false);
  });
});
