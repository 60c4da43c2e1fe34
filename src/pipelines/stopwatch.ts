/** Wall-clock stage timings, in milliseconds, for a result's `timings`. */
export class Stopwatch {
  private last: number;
  private readonly start: number;
  readonly laps: Record<string, number> = {};

  constructor(start: number = performance.now()) {
    this.start = start;
    this.last = start;
  }

  /** Record the time since the previous lap under `stage` (added to any earlier time of the same stage). */
  lap(stage: string): void {
    const now = performance.now();
    this.laps[stage] = (this.laps[stage] ?? 0) + (now - this.last);
    this.last = now;
  }

  /** The laps, rounded to 0.01 ms, plus `total` since the start. */
  timings(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [k, v] of Object.entries(this.laps)) out[k] = Math.round(v * 100) / 100;
    out.total = Math.round((performance.now() - this.start) * 100) / 100;
    return out;
  }
}
