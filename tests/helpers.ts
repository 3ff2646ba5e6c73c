// Shared assertions for tests: closeness of numbers and tensors, finite-difference gradient checks,
// and the equality of two searches' answers.
import assert from 'node:assert/strict';
import { Tensor, tensor, noGrad, tidy } from '../src/index.js';

/** Asserts |actual − expected| ≤ atol + rtol·|expected| elementwise, naming the first bad index. */
export function assertClose(actual: Tensor | number[] | number, expected: Tensor | number[] | number, atol = 1e-5, rtol = 1e-5): void {
  const flat = (v: Tensor | number[] | number): number[] => (typeof v === 'number' ? [v] : Array.isArray(v) ? v : v.toFlatArray());
  const a = flat(actual);
  const e = flat(expected);
  assert.equal(a.length, e.length, `length ${a.length} != expected ${e.length}`);
  for (let i = 0; i < a.length; i++) {
    const tol = atol + rtol * Math.abs(e[i]!);
    if (!(Math.abs(a[i]! - e[i]!) <= tol)) {
      assert.fail(`element ${i}: ${a[i]} differs from expected ${e[i]} by ${Math.abs(a[i]! - e[i]!)} (> ${tol})`);
    }
  }
}

/**
 * Checks autograd's gradient of sum(f(inputs) · w) (w a fixed random weight, so every output
 * element matters) against central finite differences, in float64.
 */
export function gradcheck(f: (...xs: Tensor[]) => Tensor, inputs: Tensor[], eps = 1e-6, atol = 1e-5, rtol = 1e-4): void {
  tidy(() => {
    const xs = inputs.map((x) => x.detach().clone().requiresGrad_(true));
    const out = f(...xs);
    const w = tensor(
      Array.from({ length: out.size }, (_, i) => Math.sin(i + 1)),
      { dtype: 'float64' },
    ).reshape(...out.shape);
    out.mul(w).sum().backward();
    const objective = (vals: Tensor[]): number =>
      noGrad(() =>
        f(...vals)
          .mul(w)
          .sum()
          .item(),
      );
    xs.forEach((x, which) => {
      const analytic = x.grad!.toFlatArray();
      const base = x.detach().clone().toFlatArray();
      const numeric: number[] = [];
      for (let i = 0; i < base.length; i++) {
        const at = (delta: number): number => {
          const v = base.slice();
          v[i]! += delta;
          const moved = xs.map((other, j) => (j === which ? tensor(v, { dtype: 'float64' }).reshape(...x.shape) : other.detach()));
          return objective(moved);
        };
        numeric.push((at(eps) - at(-eps)) / (2 * eps));
      }
      try {
        assertClose(analytic, numeric, atol, rtol);
      } catch (err) {
        throw new Error(`gradient of input ${which}: ${(err as Error).message}`);
      }
    });
  });
}

/**
 * Asserts that two searches gave the same answer: the same ranks and scores (within `atol`), the
 * same ids in every group of tied scores as sets, and distinct ids. Which of several rows of equal
 * score a top-k keeps, and in what order, is arbitrary, so the group that the cut at k ends may
 * hold other rows of that score.
 */
export function assertSameHits(
  actual: readonly { rank: number; id: string; score: number }[],
  expected: readonly { rank: number; id: string; score: number }[],
  what: string,
  atol = 1e-5,
): void {
  assert.deepEqual(
    actual.map((h) => h.rank),
    expected.map((h) => h.rank),
    `${what}: ranks`,
  );
  actual.forEach((h, i) =>
    assert.ok(Math.abs(h.score - expected[i]!.score) <= atol, `${what}: rank ${h.rank} score ${h.score} vs ${expected[i]!.score}`),
  );
  assert.equal(new Set(actual.map((h) => h.id)).size, actual.length, `${what}: an id twice`);
  for (let start = 0, end = 1; end < expected.length; start = end, end = start + 1) {
    while (end < expected.length && Math.abs(expected[end]!.score - expected[start]!.score) <= atol) end++;
    if (end === expected.length) break; // the last group: the cut may have taken other rows of its score
    const ids = (hits: readonly { id: string }[]) => hits.map((h) => h.id).sort();
    assert.deepEqual(ids(actual.slice(start, end)), ids(expected.slice(start, end)), `${what}: ranks ${start + 1}–${end}`);
  }
}

/** Token ids [rows, width] for a text tower: row r has lengths[r] tokens (ids from 1 up, below vocab), then padding (0). */
export function idBatch(lengths: number[], width: number, vocab = 50): Tensor {
  const rows = lengths.map((n, r) => Array.from({ length: width }, (_, j) => (j < n ? 1 + ((r * 13 + j * 7) % (vocab - 1)) : 0)));
  return tensor(rows, { dtype: 'int64' });
}
