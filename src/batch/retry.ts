/**
 * When to try a request again, and how long to wait first: exponential
 * backoff with full jitter (AWS's "Exponential Backoff and Jitter"), or the
 * server's Retry-After when it sends one, plus a little jitter so that many
 * clients told the same time do not come back at the same instant.
 */

export interface RetryPolicy {
  /** Tries after the first (0: never retry). */
  retries: number;
  /** The first backoff's ceiling, ms; it doubles each try. */
  baseMs: number;
  /** No backoff is longer than this, ms. */
  maxMs: number;
  /** Uniform in [0, 1); Math.random unless a test pins it. */
  random?: () => number;
}

/** Ten tries wait about 40 s in all on average, seldom under 5 s: long enough for a server to restart. */
export const DEFAULT_RETRY: RetryPolicy = Object.freeze({ retries: 10, baseMs: 250, maxMs: 15_000 });

/** A Retry-After longer than this (5 minutes) is taken as this: a run should not sleep for hours on one header. */
export const RETRY_AFTER_CAP_MS = 300_000;

/** HTTP statuses worth another try: overload, shedding, deadlines and a gateway that lost its backend. Never other 4xx: the image is at fault. */
export const RETRYABLE_STATUS: ReadonlySet<number> = new Set([429, 502, 503, 504]);

/**
 * @param attempt 0 for the wait before the first retry.
 * @param retryAfterMs the server's Retry-After, when it sent one.
 */
export function backoffMs(attempt: number, policy: RetryPolicy, retryAfterMs?: number): number {
  const random = policy.random ?? Math.random;
  if (retryAfterMs !== undefined) return Math.min(RETRY_AFTER_CAP_MS, retryAfterMs) + random() * policy.baseMs;
  return random() * Math.min(policy.maxMs, policy.baseMs * 2 ** attempt);
}

/** Retry-After in ms: delta-seconds or an HTTP date; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (value === null || value.trim() === '') return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** Resolves after ms, or at once when the signal aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
