/**
 * Prometheus metrics of the service, in a registry of its own (so tests can
 * build several apps): requests by route and status, latency per route and
 * per pipeline stage, queue depth, busy workers, models loaded.
 */

import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { InferencePool } from '../workers/inference-pool.js';

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export class Metrics {
  readonly registry = new Registry();
  readonly requests = new Counter({ name: 'rcnn_http_requests_total', help: 'HTTP requests by route and status', labelNames: ['method', 'route', 'status'], registers: [this.registry] });
  readonly latency = new Histogram({ name: 'rcnn_http_request_duration_seconds', help: 'HTTP request latency by route', labelNames: ['method', 'route'], buckets: LATENCY_BUCKETS, registers: [this.registry] });
  readonly stages = new Histogram({ name: 'rcnn_pipeline_stage_duration_seconds', help: 'Pipeline stage time, as reported in timings', labelNames: ['pipeline', 'stage'], buckets: LATENCY_BUCKETS, registers: [this.registry] });

  constructor(pool: InferencePool, modelsLoaded: () => number) {
    collectDefaultMetrics({ register: this.registry, prefix: 'rcnn_' });
    new Gauge({ name: 'rcnn_queue_depth', help: 'Requests waiting for a worker', registers: [this.registry], collect() { this.set(pool.queued); } });
    new Gauge({ name: 'rcnn_workers_busy', help: 'Workers running a request', registers: [this.registry], collect() { this.set(pool.busy); } });
    new Gauge({ name: 'rcnn_workers', help: 'Worker threads', registers: [this.registry], collect() { this.set(pool.options.workers); } });
    new Gauge({ name: 'rcnn_models_loaded', help: 'Model packages served', registers: [this.registry], collect() { this.set(modelsLoaded()); } });
  }

  /** Record a result's stage timings (ms) under its pipeline. */
  observeTimings(pipeline: string, timings: Record<string, number>): void {
    for (const [stage, ms] of Object.entries(timings)) this.stages.observe({ pipeline, stage }, ms / 1000);
  }
}
