import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DockerfileParser, type Copy, type Instruction, type JSONInstruction, type PropertyInstruction } from 'dockerfile-ast';
import { validate as lintDockerfile } from 'dockerfile-utils';
import { Deployment } from 'kubernetes-models/apps/v1';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2';
import { Job } from 'kubernetes-models/batch/v1';
import { PersistentVolumeClaim, Service } from 'kubernetes-models/v1';
import { parse, parseAllDocuments } from 'yaml';
import { describe, expect, it } from 'vitest';
import { fixturePath } from '../helpers/fixtures.js';

/**
 * The deployment files, checked as text, so that every test run holds them to
 * the project's rules: the Dockerfiles linted (dockerfile-utils, the Docker
 * language server's validator, on dockerfile-ast's parse), the compose file
 * linted against the Compose schema (dclint), every Kubernetes manifest
 * validated against the Kubernetes API schemas (kubernetes-models' validators,
 * generated from the API's OpenAPI document), and the files checked against
 * each other and the service. A real engine builds and runs the CPU image,
 * compose and the Swarm stack in `npm run test:image`, `test:compose` and
 * `test:swarm` (test/deploy/); the CUDA image, whose base cannot be pulled
 * here, only here.
 */

const repo = fixturePath('..', '..');
const docker = join(repo, 'docker');
const k8sDir = join(docker, 'k8s');

/** KEY=VALUE pairs of a stage's ENV or the file's ARG instructions. */
function properties(instructions: Instruction[], keyword: 'ENV' | 'ARG'): Record<string, string> {
  const of = instructions.filter((i) => i.getKeyword() === keyword) as PropertyInstruction[];
  return Object.fromEntries(of.flatMap((i) => i.getProperties().map((p) => [p.getName(), p.getUnescapedValue() ?? ''])));
}

/** The instructions of each stage, from its FROM to the next. */
function stagesOf(instructions: Instruction[]): Instruction[][] {
  const stages: Instruction[][] = [];
  for (const ins of instructions) {
    if (ins.getKeyword() === 'FROM') stages.push([]);
    stages.at(-1)?.push(ins);
  }
  return stages;
}

describe.each(['Dockerfile', 'Dockerfile.cuda'])('docker/%s', (name) => {
  const text = readFileSync(join(docker, name), 'utf8');
  const instructions = DockerfileParser.parse(text).getInstructions();
  const stages = stagesOf(instructions);
  const final = stages.at(-1)!;
  const env = properties(final, 'ENV');
  const args = properties(instructions, 'ARG');
  const runs = instructions.filter((i) => i.getKeyword() === 'RUN').map((i) => i.getArgumentsContent() ?? '');
  const last = (keyword: string) => final.filter((i) => i.getKeyword() === keyword).at(-1);

  it('passes the Dockerfile linter with no diagnostic', () => {
    expect(lintDockerfile(text).map((d) => `${d.range.start.line + 1}: ${d.message}`)).toEqual([]);
  });

  it('builds in stages on pinned bases, installs with npm ci, runs as a non-root user with a health check on /healthz', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    for (const image of Object.values(args).filter((v) => v.includes(':'))) expect(image).toMatch(/^[\w./-]+:(?!latest$)[\w.-]+$/);
    expect(args.NODE_IMAGE).toMatch(/^node:24-/); // Node 24 LTS
    expect(runs.some((r) => r.includes('npm ci --omit=dev'))).toBe(true);
    expect(runs.filter((r) => /npm (install|i)\b/.test(r))).toEqual([]);
    expect(instructions.filter((i) => i.getKeyword() === 'ADD')).toEqual([]);
    expect(['root', '0', undefined]).not.toContain(last('USER')?.getArgumentsContent());
    expect(last('HEALTHCHECK')?.getArgumentsContent()).toContain('/healthz');
    expect((last('CMD') as JSONInstruction).getJSONStrings().map((s) => s.getJSONValue())).toEqual(['node', 'bin/rcnn-serve.js', 'serve']);
    expect(env.MODELS_DIR).toBe('/app/models');
    expect(final.some((i) => i.getKeyword() === 'COPY' && i.getArgumentsContent()!.startsWith('models '))).toBe(true);
  });

  it('keeps only its own platform\'s onnxruntime-node binaries', () => {
    expect(runs.some((r) => r.includes('cd node_modules/onnxruntime-node/bin') && r.includes('rm -r'))).toBe(true);
  });

  it('copies only what .dockerignore lets through, and nothing it needs is ignored', () => {
    const ignored = readFileSync(join(repo, '.dockerignore'), 'utf8').split('\n').filter((l) => l && !l.startsWith('#'));
    const fromContext = instructions.filter((i): i is Copy => i.getKeyword() === 'COPY' && !(i as Copy).getFromFlag());
    const copied = fromContext.flatMap((i) => i.getArguments().slice(0, -1).map((a) => a.getValue()));
    for (const c of copied) expect(ignored).not.toContain(c.replace(/\/$/, ''));
    expect(ignored).toEqual(expect.arrayContaining(['.git', 'node_modules', 'data', 'models/recipes']));
  });

  if (name === 'Dockerfile.cuda') {
    it("gets ONNX Runtime's CUDA provider by either route, downloaded or from npm run gpu:bundle's docker/ort-bundle, and serves on the GPU", () => {
      expect(env.DEVICE).toBe('cuda');
      expect(args.CUDA_IMAGE).toMatch(/^nvidia\/cuda:12\.[\d.]+-cudnn-runtime-/); // CUDA 12 + cuDNN (9 in the 12.x cudnn images)
      expect(text).toMatch(/^ARG ORT_CUDA=download$/m);
      // One stage for both routes: the classic builder builds every stage, and the default route must need no bundle.
      const route = runs.find((r) => r.includes('npm rebuild onnxruntime-node'))!;
      expect(route).toContain('ONNXRUNTIME_NODE_INSTALL=cuda12 npm rebuild onnxruntime-node');
      expect(route).toContain('run npm run gpu:bundle first');
      expect(final.filter((i) => i.getKeyword() === 'COPY').map((i) => i.getArgumentsContent())).toContain('docker/ort-bundle/ ./');
      expect(readFileSync(join(repo, 'docker', 'ort-bundle', 'ORT-BUNDLE.md'), 'utf8')).toContain('npm run gpu:bundle');
      const ignore = readFileSync(join(repo, '.dockerignore'), 'utf8').split('\n');
      expect(ignore).toEqual(expect.arrayContaining(['.gpu', 'docker', '!docker/ort-bundle']));
    });
  }
});

/** A Compose duration (20s, 1m30s) in ms. */
function durationMs(text: string): number {
  let ms = 0;
  for (const [, n, unit] of text.matchAll(/(\d+)(ms|s|m|h)/g)) ms += Number(n) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[unit as 'ms' | 's' | 'm' | 'h'];
  return ms;
}

describe('docker/compose.yaml', () => {
  it('passes dclint (the Compose schema and its rules)', () => {
    const bin = join(repo, 'node_modules', '.bin', 'dclint');
    // no-build-and-image: the service builds the image the batch job runs. require-project-name-field:
    // Debian's docker-compose 1.29 refuses a top-level name (test:compose runs it), so -p names the project.
    const rules = ['no-build-and-image', 'require-project-name-field'].flatMap((r) => ['--disable-rule', r]);
    const out = execFileSync(bin, [join(docker, 'compose.yaml'), ...rules, '--max-warnings', '0', '--color', 'false'], { encoding: 'utf8' });
    expect(out).not.toMatch(/error|warning/);
  });

  it('builds the image the batch job runs, and the job waits for a healthy service', () => {
    const compose = parse(readFileSync(join(docker, 'compose.yaml'), 'utf8'));
    const service = compose.services['rcnn-serve'];
    expect(readFileSync(join(repo, service.build.dockerfile), 'utf8')).toContain('FROM');
    expect(compose.services.batch.image).toBe(service.image);
    expect(compose.services.batch.depends_on['rcnn-serve'].condition).toBe('service_healthy');
    expect(compose.services.batch.command.slice(0, 3)).toEqual(['node', 'bin/rcnn-serve.js', 'batch']);
  });
});

describe('docker/stack.yaml', () => {
  const stack = parse(readFileSync(join(docker, 'stack.yaml'), 'utf8'), { merge: true });
  const mesh = parse(readFileSync(join(docker, 'stack.mesh.yaml'), 'utf8'));
  const service = stack.services['rcnn-serve'];
  const shards = Object.entries<any>(stack.services).filter(([n]) => n.startsWith('batch-'));

  it('runs 3 replicas, rolled start-first one at a time, each stop given longer than the service shuts down in', () => {
    expect(service.image).toBe(parse(readFileSync(join(docker, 'compose.yaml'), 'utf8')).services['rcnn-serve'].image);
    expect(service.deploy.replicas).toBe(3);
    expect(service.deploy.update_config).toMatchObject({ order: 'start-first', parallelism: 1, failure_action: 'rollback' });
    expect(durationMs(service.stop_grace_period)).toBeGreaterThan(Number(service.environment.SHUTDOWN_TIMEOUT_MS));
    expect(service.read_only).toBe(true);
    expect(mesh.services['rcnn-serve'].ports).toEqual(['${RCNN_SERVE_PORT:-8080}:8080']);
  });

  it('shards the batch job: one replicated job per shard, shard i of N writing its own file, N the number of jobs', () => {
    expect(shards.map(([n]) => n)).toEqual(shards.map((_, i) => `batch-${i}`));
    for (const [, job] of shards) {
      expect(job.deploy).toMatchObject({ mode: 'replicated-job', replicas: 1, restart_policy: { condition: 'on-failure' } });
      expect(job.healthcheck).toEqual({ disable: true });
      expect(job.image).toBe(service.image);
      const script = job.command.join(' ');
      expect(script).toContain(`--shard "$$SHARD/${shards.length}"`);
      expect(script).toContain('--out "/data/out/detections-$$SHARD.jsonl" --resume');
      expect(script).toContain('--url http://rcnn-serve:8080');
    }
    expect(shards.map(([, job]) => job.environment.SHARD)).toEqual(shards.map((_, i) => String(i)));
  });

  it('queues on one replica all the requests the jobs have in flight (their connections may all reach one)', () => {
    const inFlight = shards.reduce((n, [, job]) => n + Number(/--concurrency (\d+)/.exec(job.command.join(' '))![1]), 0);
    expect(Number(service.environment.MAX_QUEUE)).toBeGreaterThanOrEqual(inFlight);
  });
});

interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string> };
  spec: any;
}

const manifests: { file: string; doc: Manifest }[] = readdirSync(k8sDir)
  .filter((f) => f.endsWith('.yaml'))
  .flatMap((file) => parseAllDocuments(readFileSync(join(k8sDir, file), 'utf8')).map((d) => ({ file, doc: d.toJS() as Manifest })));

/** The validators of the kinds the manifests use, by apiVersion and kind. */
const MODELS: Record<string, new (data: any) => { validate(): void }> = {
  'apps/v1 Deployment': Deployment,
  'v1 Service': Service,
  'v1 PersistentVolumeClaim': PersistentVolumeClaim,
  'autoscaling/v2 HorizontalPodAutoscaler': HorizontalPodAutoscaler,
  'batch/v1 Job': Job,
};

function modelClass(apiVersion: string, kind: string): new (data: any) => { validate(): void } {
  const cls = MODELS[`${apiVersion} ${kind}`];
  if (!cls) throw new Error(`no validator for ${apiVersion} ${kind}; add its kubernetes-models class to MODELS`);
  return cls;
}

describe('docker/k8s', () => {
  it('has the Deployments (CPU and GPU), Service, autoscaler, volume claim and Indexed Job', () => {
    expect(manifests.map((m) => `${m.doc.kind}/${m.doc.metadata.name}`).sort()).toEqual([
      'Deployment/rcnn-serve',
      'Deployment/rcnn-serve-gpu',
      'HorizontalPodAutoscaler/rcnn-serve',
      'Job/rcnn-serve-batch',
      'PersistentVolumeClaim/rcnn-serve-batch',
      'Service/rcnn-serve',
    ]);
  });

  it.each(manifests.map((m) => [`${m.file}: ${m.doc.kind}/${m.doc.metadata.name}`, m.doc] as const))('%s is valid against the Kubernetes API schema', async (_, doc) => {
    const Model = modelClass(doc.apiVersion, doc.kind);
    expect(() => new Model(doc).validate()).not.toThrow();
  });

  it('the schema check catches broken manifests (so the passes above mean something)', async () => {
    const deployment = manifests.find((m) => m.doc.kind === 'Deployment')!.doc;
    const Model = modelClass('apps/v1', 'Deployment');
    expect(() => new Model({ ...deployment, spec: { ...deployment.spec, replicas: 'two' } }).validate()).toThrow();
    expect(() => new Model({ ...deployment, spec: { ...deployment.spec, selector: undefined } }).validate()).toThrow();
    const container = deployment.spec.template.spec.containers[0];
    const badProbe = { ...container, readinessProbe: { httpGet: { path: '/readyz' } } }; // no port
    expect(() => new Model({ ...deployment, spec: { ...deployment.spec, template: { ...deployment.spec.template, spec: { containers: [badProbe] } } } }).validate()).toThrow();
  });

  const deployments = manifests.filter((m) => m.doc.kind === 'Deployment').map((m) => m.doc);
  const openapi = readFileSync(join(repo, 'openapi.yaml'), 'utf8');

  it.each(deployments.map((d) => [d.metadata.name, d] as const))('%s: probes on the health routes, requests and limits, workers x threads within the CPU limit', (_, d) => {
    const c = d.spec.template.spec.containers[0];
    expect(c.livenessProbe.httpGet.path).toBe('/healthz');
    expect(c.readinessProbe.httpGet.path).toBe('/readyz');
    for (const p of ['/healthz:', '/readyz:']) expect(openapi).toContain(p);
    expect(c.resources.requests.cpu).toBeDefined();
    expect(c.resources.limits.memory).toBeDefined();
    const env = Object.fromEntries(c.env.map((e: { name: string; value: string }) => [e.name, e.value]));
    expect(Number(env.WORKERS) * Number(env.ORT_THREADS)).toBeLessThanOrEqual(Number(c.resources.limits.cpu));
    expect(d.spec.template.spec.terminationGracePeriodSeconds * 1000).toBeGreaterThan(Number(env.SHUTDOWN_TIMEOUT_MS) + 5000);
    expect(d.spec.template.metadata.labels).toEqual(expect.objectContaining(d.spec.selector.matchLabels));
  });

  it('the GPU variant asks for nvidia.com/gpu and DEVICE=cuda on the CUDA image', () => {
    const gpu = deployments.find((d) => d.metadata.name === 'rcnn-serve-gpu')!.spec.template.spec.containers[0];
    expect(gpu.resources.limits['nvidia.com/gpu']).toBe('1');
    expect(gpu.env).toContainEqual({ name: 'DEVICE', value: 'cuda' });
    expect(gpu.image).toMatch(/-cuda$/);
  });

  it('the Service selects the Deployments pods, the autoscaler scales the CPU one, the Job shards against the Service', () => {
    const service = manifests.find((m) => m.doc.kind === 'Service')!.doc;
    for (const d of deployments) expect(d.spec.template.metadata.labels).toEqual(expect.objectContaining(service.spec.selector));
    expect(service.spec.ports[0].targetPort).toBe(deployments[0]!.spec.template.spec.containers[0].ports[0].name);
    const hpa = manifests.find((m) => m.doc.kind === 'HorizontalPodAutoscaler')!.doc;
    expect(hpa.spec.scaleTargetRef).toMatchObject({ kind: 'Deployment', name: 'rcnn-serve' });
    const job = manifests.find((m) => m.doc.kind === 'Job')!.doc;
    expect(job.spec.completionMode).toBe('Indexed');
    const script = job.spec.template.spec.containers[0].args.join(' ');
    const shards = /--shard "\$JOB_COMPLETION_INDEX\/(\d+)"/.exec(script);
    expect(Number(shards?.[1])).toBe(job.spec.completions);
    expect(script).toContain(`--url http://${service.metadata.name}`);
    expect(script).toContain('--resume');
    const claim = manifests.find((m) => m.doc.kind === 'PersistentVolumeClaim')!.doc;
    expect(job.spec.template.spec.volumes[0].persistentVolumeClaim.claimName).toBe(claim.metadata.name);
  });
});
