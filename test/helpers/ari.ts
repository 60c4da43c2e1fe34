/**
 * Adjusted Rand index of two labelings of the same pixels (Hubert & Arabie
 * 1985), as sklearn.metrics.adjusted_rand_score: 1 for identical partitions,
 * about 0 for independent ones.
 */
export function adjustedRandIndex(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new RangeError(`labelings differ in length: ${a.length} vs ${b.length}`);
  const n = a.length;
  const pairs = new Map<number, number>();
  const rows = new Map<number, number>();
  const cols = new Map<number, number>();
  const width = 1 << 20;
  for (let i = 0; i < n; i++) {
    const key = a[i]! * width + b[i]!;
    pairs.set(key, (pairs.get(key) ?? 0) + 1);
    rows.set(a[i]!, (rows.get(a[i]!) ?? 0) + 1);
    cols.set(b[i]!, (cols.get(b[i]!) ?? 0) + 1);
  }
  const choose2 = (x: number) => (x * (x - 1)) / 2;
  let index = 0;
  for (const v of pairs.values()) index += choose2(v);
  let sumA = 0;
  for (const v of rows.values()) sumA += choose2(v);
  let sumB = 0;
  for (const v of cols.values()) sumB += choose2(v);
  const expected = (sumA * sumB) / choose2(n);
  const max = (sumA + sumB) / 2;
  return max === expected ? 1 : (index - expected) / (max - expected);
}
