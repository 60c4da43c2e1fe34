/**
 * Progress of a batch run: a bar with rate and ETA on a terminal
 * (cli-progress), a log line every interval otherwise (CI logs, Kubernetes
 * Jobs), and the summary line at the end.
 */

import cliProgress from 'cli-progress';

export interface BatchCounts {
  /** Images of this run (this shard), including those an earlier run wrote. */
  total: number;
  /** Written by an earlier run and not redone. */
  skipped: number;
  done: number;
  failed: number;
  /** Retries made (a request tried again counts once per try). */
  retried: number;
}

export interface Progress {
  update(counts: BatchCounts): void;
  stop(counts: BatchCounts): void;
}

function duration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.round(seconds);
  return s >= 3600 ? `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m` : s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

export function summaryLine(c: BatchCounts, seconds: number): string {
  const rate = (c.done + c.failed) / Math.max(seconds, 1e-9);
  return `batch: ${c.done} done, ${c.failed} failed, ${c.skipped} already written, ${c.retried} retries, ${(c.done + c.failed)} images in ${seconds.toFixed(1)} s (${rate.toFixed(2)} images/s)`;
}

export function createProgress(options: { tty: boolean; log: (line: string) => void; intervalMs?: number; stream?: NodeJS.WritableStream }): Progress {
  const started = performance.now();
  const rate = (c: BatchCounts) => (c.done + c.failed) / Math.max((performance.now() - started) / 1000, 1e-9);
  if (options.tty) {
    const bar = new cliProgress.SingleBar(
      {
        stream: options.stream ?? process.stderr,
        format: 'batch {bar} {percentage}% | {value}/{total} | {rate} img/s | ETA {eta_formatted} | failed {failed} | retries {retried}',
        hideCursor: true,
        etaBuffer: 50,
      },
      cliProgress.Presets.shades_classic,
    );
    let barStarted = false;
    return {
      update(c) {
        const payload = { rate: rate(c).toFixed(2), failed: c.failed, retried: c.retried };
        if (!barStarted) {
          bar.start(c.total, c.skipped + c.done + c.failed, payload);
          barStarted = true;
        } else bar.update(c.skipped + c.done + c.failed, payload);
      },
      stop(c) {
        if (barStarted) bar.stop();
        options.log(summaryLine(c, (performance.now() - started) / 1000));
      },
    };
  }
  const interval = options.intervalMs ?? 10_000;
  let last = performance.now();
  return {
    update(c) {
      const now = performance.now();
      if (now - last < interval) return;
      last = now;
      const finished = c.skipped + c.done + c.failed;
      const r = rate(c);
      options.log(`batch: ${finished}/${c.total} (${((100 * finished) / Math.max(c.total, 1)).toFixed(1)}%), ${r.toFixed(2)} images/s, ETA ${duration((c.total - finished) / r)}, ${c.failed} failed, ${c.retried} retries`);
    },
    stop(c) {
      options.log(summaryLine(c, (performance.now() - started) / 1000));
    },
  };
}
