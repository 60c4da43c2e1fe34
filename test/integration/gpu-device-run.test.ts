/**
 * test/gpu/device-run.sh, the device machine's side of `npm run test:gpu`,
 * on a stand-in bundle: it waits for every part, refuses a bundle whose
 * sha256 is wrong, unpacks it into the repository and runs the device
 * script with OUT and the extra arguments. (The real bundle is `npm run
 * gpu:bundle`'s, 86 MB; docs/gpu.md.)
 */

import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixturePath } from '../helpers/fixtures.js';

let work: string, repo: string, bundle: Buffer;

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'rcnn-serve-gpu-run-'));
  repo = join(work, 'repo');
  mkdirSync(join(repo, 'test', 'gpu'), { recursive: true });
  mkdirSync(join(repo, '.gpu'));
  cpSync(fixturePath('..', 'gpu', 'device-run.sh'), join(repo, 'test', 'gpu', 'device-run.sh'));
  // The stand-in bundle: a ".gpu/node" that reports how it was called, and the files the real one holds.
  const stage = join(work, 'stage');
  mkdirSync(join(stage, '.gpu'), { recursive: true });
  mkdirSync(join(stage, 'dist'));
  writeFileSync(join(stage, '.gpu', 'node'), '#!/bin/sh\necho "node called with: $*"\necho "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"\n');
  chmodSync(join(stage, '.gpu', 'node'), 0o755);
  writeFileSync(join(stage, '.gpu', 'device-check.mjs'), '// the bundled device script\n');
  writeFileSync(join(stage, 'dist', 'index.js'), 'export {};\n');
  execFileSync('tar', ['-C', stage, '-cJf', join(work, 'bundle.tar.xz'), '.']);
  bundle = readFileSync(join(work, 'bundle.tar.xz'));
});

afterAll(() => rmSync(work, { recursive: true, force: true }));

function parts(sha256: string) {
  const half = Math.ceil(bundle.length / 2);
  writeFileSync(join(repo, '.gpu', 'parts.json'), JSON.stringify({ parts: 2, sha256, bytes: bundle.length, sm: [90] }));
  return [bundle.subarray(0, half), bundle.subarray(half)];
}

const run = (...args: string[]) => spawnSync('bash', [join(repo, 'test', 'gpu', 'device-run.sh'), ...args], { encoding: 'utf8', env: { ...process.env, OUT: join(work, 'out') } });

describe('test/gpu/device-run.sh', () => {
  it('stores the parts as they come, then checks, unpacks and runs the device script with OUT and the arguments', () => {
    const [first, second] = parts(createHash('sha256').update(bundle).digest('hex'));
    writeFileSync(join(repo, '.gpu', 'part-1'), first!);
    const waiting = run();
    expect(waiting.status, waiting.stderr).toBe(0);
    expect(waiting.stdout).toContain('bundle: parts 2 of 2 still to come; nothing run yet');
    expect(existsSync(join(repo, '.gpu', 'node'))).toBe(false);

    writeFileSync(join(repo, '.gpu', 'part-2'), second!);
    const ran = run('--skip-r50');
    expect(ran.status, ran.stderr).toBe(0);
    expect(ran.stdout).toContain(`node called with: .gpu/device-check.mjs --out ${join(work, 'out')} --skip-r50`);
    expect(existsSync(join(repo, 'dist', 'index.js'))).toBe(true);
    expect(existsSync(join(repo, '.gpu', 'bundle.tar.xz'))).toBe(false);
    expect(readFileSync(join(work, 'out', 'device-check.log'), 'utf8')).toContain('node called with');
  });

  it('refuses a bundle whose parts do not add up to its sha256, running nothing', () => {
    rmSync(join(repo, '.gpu', 'node'));
    rmSync(join(repo, 'dist'), { recursive: true });
    const [first, second] = parts('0'.repeat(64));
    writeFileSync(join(repo, '.gpu', 'part-1'), first!);
    writeFileSync(join(repo, '.gpu', 'part-2'), second!);
    const refused = run();
    expect(refused.status).not.toBe(0);
    expect(refused.stderr).toMatch(/FAILED|did NOT match/);
    expect(refused.stdout).not.toContain('node called with');
    expect(existsSync(join(repo, 'dist'))).toBe(false);
  });
});
