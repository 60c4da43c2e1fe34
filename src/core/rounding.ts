/** Rounding rules of the references, named so that each call site says which it follows. */

/** Round half to even, as torch.round and numpy.round. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** Round half away from zero, as C/C++ std::round. */
export function roundHalfAway(x: number): number {
  return x < 0 ? -Math.round(-x) : Math.round(x);
}
