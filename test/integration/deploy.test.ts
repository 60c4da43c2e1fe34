import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { validate as lintDockerfile } from 'dockerfile-utils';
import { Deployment } from 'kubernetes-models/apps/v1';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2';
import { Job } from 'kubernetes-models/batch/v1';
import { PersistentVolumeClaim, Service } from 'kubernetes-models/v1';
import { parse, parseAllDocuments } from 'yaml';
import { describe, expect, it } from 'vitest';
import { fixturePath } from '../helpers/fixtures.js';
import { commandOf, parseDockerfile, parsePairs, type Instruction } from '../helpers/dockerfile.js';

/**
 * The deployment files, checked without a Docker engine or a cluster: the
 * Dockerfiles linted (dockerfile-utils, the Docker language server's
 * validator) and held to the project's rules, the compose file linted against
 * the Compose schema (dclint), every Kubernetes manifest validated against the
 * Kubernetes API schemas (kubernetes-models' validators, generated from the
 * API's OpenAPI document), and the files checked against each other and the
 * service. The image's steps themselves run in `npm run test:image`.
 */

const repo = fixturePath('..', '..');
const docker = join(repo, 'docker');
const k8sDir = join(docker, 'k8s');

function stagesOf(instructions: Instruction[]): Instruction[][] {
  const stages: Instruction[][] = [];
  for (const ins of instructions) {
    if (ins.keyword === 'FROM') stages.push([]);
    stages.at(-1)?.push(ins);
  }
  return stages;
}

describe.each(['Dockerfile', 'Dockerfile.cuda'])('docker/%s', (name) => {
  const text = readFileSync(join(docker, name), 'utf8');
  const instructions = parseDockerfile(text);
  const final = stagesOf(instructions).at(-1)!;
  const env = Object.assign({}, ...final.filter((i) => i.keyword === 'ENV').map((i) => parsePairs(i.args))) as Record<string, string>;
  const args = Object.assign({}, ...instructions.filter((i) => i.keyword === 'ARG').map((i) => parsePairs(i.args))) as Record<string, string>;

  it('passes the Dockerfile linter with no diagnostic', () => {
    expect(lintDockerfile(text).map((d) => `${d.range.start.line + 1}: ${d.message}`)).toEqual([]);
  });

  it('builds in stages on pinned bases, installs with npm ci, runs as a non-root user with a health check on /healthz', () => {
    expect(stagesOf(instructions).length).toBeGreaterThanOrEqual(2);
    for (const image of Object.values(args).filter((v) => v.includes(':'))) expect(image).toMatch(/^[\w./-]+:(?!latest$)[\w.-]+$/);
    expect(args.NODE_IMAGE).toMatch(/^node:24-/); // Node 24 LTS
    const runs = instructions.filter((i) => i.keyword === 'RUN').map((i) => i.args);
    expect(runs.some((r) => r.includes('npm ci --omit=dev'))).toBe(true);
    expect(runs.filter((r) => /npm (install|i)\b/.test(r))).toEqual([]);
    expect(instructions.filter((i) => i.keyword === 'ADD')).toEqual([]);
    const user = final.filter((i) => i.keyword === 'USER').at(-1)?.args;
    expect(user).toBeDefined();
    expect(['root', '0']).not.toContain(user);
    const health = final.find((i) => i.keyword === 'HEALTHCHECK')!;
    expect(health.args).toContain('/healthz');
    expect(commandOf(final.find((i) => i.keyword === 'CMD')!.args)).toEqual(['node', 'bin/rcnn-serve.js', 'serve']);
    expect(env.MODELS_DIR).toBe('/app/models');
    expect(final.some((i) => i.keyword === 'COPY' && i.args.startsWith('models '))).toBe(true);
  });

  it('copies only what .dockerignore lets through, and nothing it needs is ignored', () => {
    const ignored = readFileSync(join(repo, '.dockerignore'), 'utf8').split('\n').filter((l) => l && !l.startsWith('#'));
    const copied = instructions.filter((i) => i.keyword === 'COPY' && !i.args.startsWith('--from')).flatMap((i) => i.args.split(/\s+/).slice(0, -1));
    for (const c of copied) expect(ignored).not.toContain(c.replace(/\/$/, ''));
    expect(ignored).toEqual(expect.arrayContaining(['.git', 'node_modules', 'data', 'models/recipes']));
  });

  if (name === 'Dockerfile.cuda') {
    it('asks onnxruntime-node for its CUDA 12 provider and serves on the GPU', () => {
      expect(env.ONNXRUNTIME_NODE_INSTALL).toBe('cuda12');
      expect(env.DEVICE).toBe('cuda');
      expect(args.CUDA_IMAGE).toMatch(/^nvidia\/cuda:12\.[\d.]+-cudnn-runtime-/); // CUDA 12 + cuDNN (9 in the 12.x cudnn images)
      expect(instructions.some((i) => i.keyword === 'RUN' && i.args.includes('npm rebuild onnxruntime-node'))).toBe(true);
    });
  }
});

describe('docker/compose.yaml', () => {
  it('passes dclint (the Compose schema and its rules)', () => {
    const bin = join(repo, 'node_modules', '.bin', 'dclint');
    const out = execFileSync(bin, [join(docker, 'compose.yaml'), '--disable-rule', 'no-build-and-image', '--max-warnings', '0', '--color', 'false'], { encoding: 'utf8' });
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
