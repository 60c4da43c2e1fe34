/**
 * `npm run gpu:bundle`: everything `npm run test:gpu` needs on a CUDA
 * machine with no network, from the npm registry alone, packed to travel
 * (docs/gpu.md, "The offline route").
 *
 *   npm run gpu:bundle -- [--sm 90] [--part-mb N]
 *
 * onnxruntime-node's own CUDA install downloads its provider from GitHub at
 * `npm install`; the device machine (and this one) can reach neither. The
 * npm registry does hold a CUDA build of ONNX Runtime's provider:
 * com.github.asus4.onnxruntime.linux-x64-gpu 0.4.9 ships ONNX Runtime
 * 1.29.0's libonnxruntime_providers_cuda.so, built for CUDA 13 and cuDNN 9.
 * A provider must match its core exactly, so the bundle carries
 * onnxruntime-node 1.29.0 (and its onnxruntime-common) in place of the
 * project's 1.30.0, the provider beside its core library, where
 * onnxruntime-node's own CUDA install puts it.
 *
 * 1. fetches the three tarballs with `npm pack` into .gpu/cache, checked
 *    against the registry's sha512 pinned here;
 * 2. stages, as the files will lie in the repository on the device: this Node binary (.gpu/node), the production node_modules with
 *    onnxruntime-node 1.29.0 (Linux x64 only) and the provider, its kernels
 *    pruned to the GPU's architecture (--sm; scripts/prune-fatbin.ts: 230 MB
 *    -> 38 MB compressed for sm_90, the H100 and H200), the compiled dist/,
 *    and test/gpu/device-check.ts bundled to one file that imports dist/;
 * 3. packs it as .gpu/bundle.tar.xz, split into parts that each fit one
 *    device call beside the working tree (64 MiB in all), with .gpu/parts.json;
 *    and copies its ONNX Runtime to docker/ort-bundle for the CUDA image
 *    (docker/Dockerfile.cuda, --build-arg ORT_CUDA=bundle).
 *
 * It prints the device calls, in order (test/gpu/device-run.sh unpacks and runs).
 */

import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { build } from 'esbuild';
import { pruneFatbins } from './prune-fatbin.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const { values } = parseArgs({ options: { sm: { type: 'string', default: '90' }, 'part-mb': { type: 'string' } } });
const sm = new Set(values.sm.split(',').map(Number));

/** What the bundle is made of, pinned to the registry's integrity. */
const SOURCES = {
  core: { spec: 'onnxruntime-node@1.29.0', integrity: 'sha512-WjiVVB72riILz8HbYvxvmjKyE/WmkYoSfKY++axo5jAR609HQg8MwiG/HhShpTcJfmmAdzxxmB+MMST3A+SiPA==' },
  common: { spec: 'onnxruntime-common@1.29.0', integrity: 'sha512-/F63/e2VJoaVXGGNu6S5QH7jivBThGO95OzAVXXQ8hTta/b1QxI8udHa6cI3+3mAb5WWIIaMMwfZw01oivjJ1g==' },
  provider: { spec: 'com.github.asus4.onnxruntime.linux-x64-gpu@0.4.9', integrity: 'sha512-FopIhNE/Ng+v2X65wVc9clPCBCvhvA53Hxo2U0Kf5fGdVsC7iCA+mZ0KLWggcQAj7TIZ6pNidR4AC10g74Xo6w==' },
} as const;

const gpu = join(root, '.gpu');
const cache = join(gpu, 'cache');
const stage = join(gpu, 'stage');
const MIB = 1024 * 1024;

function run(file: string, args: string[], cwd = root): string {
  return execFileSync(file, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 64 * MIB });
}

/** A source's tarball, fetched once, unpacked into a fresh folder. */
function unpacked(source: (typeof SOURCES)[keyof typeof SOURCES]): string {
  mkdirSync(cache, { recursive: true });
  const name = source.spec.replace(/@(?=[^@]*$)/, '-') + '.tgz';
  const tarball = join(cache, name);
  if (!existsSync(tarball)) run('npm', ['pack', source.spec, '--pack-destination', cache, '--silent']);
  const integrity = `sha512-${createHash('sha512').update(readFileSync(tarball)).digest('base64')}`;
  if (integrity !== source.integrity) throw new Error(`${tarball}: integrity ${integrity}, not the pinned ${source.integrity}; delete it to fetch it again`);
  const dir = join(cache, name.replace(/\.tgz$/, ''));
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir);
  run('tar', ['-xzf', tarball, '-C', dir]);
  return join(dir, 'package');
}

/** The production dependencies' folders, from npm's own tree (never the dev tools). */
function productionPackages(): string[] {
  const lines = run('npm', ['ls', '--omit=dev', '--all', '--parseable']).split('\n').filter(Boolean);
  return lines.filter((p) => p !== root.replace(/\/$/, '') && p.includes('node_modules'));
}

function check(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(message);
}

// Node: the official Linux build links only the C and C++ runtimes, so it runs on any glibc Linux.
const needed = run('readelf', ['-d', process.execPath]);
check(!/libnode|libuv|libicu/.test(needed), `${process.execPath} links shared Node libraries (a distribution's build); run this script with an official Node binary`);

console.log('building dist/ and fetching ONNX Runtime 1.29.0 and its CUDA provider ...');
run('npx', ['tsc', '-p', 'tsconfig.build.json']);
const core = unpacked(SOURCES.core);
const common = unpacked(SOURCES.common);
const provider = unpacked(SOURCES.provider);

rmSync(stage, { recursive: true, force: true });
mkdirSync(join(stage, '.gpu'), { recursive: true });
cpSync(process.execPath, join(stage, '.gpu', 'node'));
cpSync(join(root, 'dist'), join(stage, 'dist'), { recursive: true });

// node_modules: the production tree, with ONNX Runtime swapped for the provider's version.
for (const dir of productionPackages()) {
  const rel = relative(root, dir);
  if (/(^|\/)onnxruntime-(node|common)$/.test(rel)) continue;
  cpSync(dir, join(stage, rel), { recursive: true, filter: (src) => src === dir || !relative(dir, src).split('/').includes('node_modules') });
}
const ort = join(stage, 'node_modules', 'onnxruntime-node');
const native = join('bin', 'napi-v6', 'linux', 'x64');
for (const part of ['package.json', 'dist', join(native, 'onnxruntime_binding.node'), join(native, 'libonnxruntime.so.1')]) {
  mkdirSync(dirname(join(ort, part)), { recursive: true });
  cpSync(join(core, part), join(ort, part), { recursive: true });
}
cpSync(common, join(stage, 'node_modules', 'onnxruntime-common'), { recursive: true });
const plugins = join(provider, 'Plugins', 'Linux', 'x64');
cpSync(join(plugins, 'libonnxruntime_providers_shared.so'), join(ort, native, 'libonnxruntime_providers_shared.so'));
const cudaProvider = new Uint8Array(readFileSync(join(plugins, 'libonnxruntime_providers_cuda.so')));
const pruned = pruneFatbins(cudaProvider, sm);
writeFileSync(join(ort, native, 'libonnxruntime_providers_cuda.so'), cudaProvider);
const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;
// The same ONNX Runtime for the CUDA image's bundle route (docker/Dockerfile.cuda, ORT_CUDA=bundle).
const forImage = join(root, 'docker', 'ort-bundle', 'node_modules');
rmSync(forImage, { recursive: true, force: true });
for (const pkg of ['onnxruntime-node', 'onnxruntime-common']) cpSync(join(stage, 'node_modules', pkg), join(forImage, pkg), { recursive: true });
console.log(`CUDA provider: kernels for ${Object.entries(pruned.architectures).map(([a, n]) => `sm_${a} ${mb(n)}`).join(', ')}; kept sm_${[...sm].join(', sm_')}, zeroed ${mb(pruned.zeroedBytes)}`);

// The device script, bundled: its test helpers inside, the project's modules from dist/.
const src = join(root, 'src');
await build({
  entryPoints: [join(root, 'test', 'gpu', 'device-check.ts')],
  outfile: join(stage, '.gpu', 'device-check.mjs'),
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  logLevel: 'warning',
  plugins: [{
    name: 'project-from-dist',
    setup(b) {
      b.onResolve({ filter: /^\.\.?\// }, (args) => {
        const target = join(args.resolveDir, args.path);
        if (!target.startsWith(src)) return undefined;
        return { path: `../dist/${relative(src, target)}`, external: true };
      });
      b.onResolve({ filter: /^[^./]/ }, (args) => ({ path: args.path, external: true }));
    },
  }],
});

// Pack and split. Each device call carries the working tree too: a part is what is left of 64 MiB.
const tracked = run('git', ['ls-files', '-co', '--exclude-standard', '-z']).split('\0').filter(Boolean);
const treeBytes = tracked.reduce((sum, f) => sum + (existsSync(join(root, f)) ? statSync(join(root, f)).size : 0), 0);
const partBytes = values['part-mb'] ? Number(values['part-mb']) * MIB : 64 * MIB - treeBytes - 2 * MIB;
check(partBytes > 4 * MIB, `the working tree is ${mb(treeBytes)}: too little of a call's 64 MiB is left for the bundle`);
for (const f of readdirSync(gpu)) if (/^part-\d+$|^bundle\.tar\.xz$|^parts\.json$/.test(f)) rmSync(join(gpu, f));
console.log('compressing (xz) ...');
const archive = join(gpu, 'bundle.tar.xz');
execFileSync('tar', ['-C', stage, '-cf', archive, '--use-compress-program', 'xz -6 -T0', '.'], { stdio: 'inherit' });
const bytes = readFileSync(archive);
const parts = Math.ceil(bytes.length / partBytes);
for (let i = 0; i < parts; i++) writeFileSync(join(gpu, `part-${i + 1}`), bytes.subarray(i * partBytes, (i + 1) * partBytes));
const sha256 = createHash('sha256').update(bytes).digest('hex');
writeFileSync(join(gpu, 'parts.json'), `${JSON.stringify({ parts, sha256, bytes: bytes.length, sm: [...sm] })}\n`);
rmSync(archive);

console.log(`bundle: ${mb(bytes.length)} in ${parts} part(s) of at most ${mb(partBytes)} (the working tree is ${mb(treeBytes)}); sha256 ${sha256}`);
console.log('On the device machine, one call per part, back to back (a machine stays warm 30 s between calls):');
for (let i = 1; i <= parts; i++) {
  console.log(`  run command="bash test/gpu/device-run.sh" carry=[".gpu/parts.json", ".gpu/part-${i}"] timeout_s=${i < parts ? 120 : 600}`);
}
