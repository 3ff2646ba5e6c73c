// VICReg's variance, covariance and invariance terms against hand computation in plain JS, their
// behaviour at collapse, and their place in alignmentLoss (weights, presence masks, logged parts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tensor, type Tensor } from '../src/index.js';
import { covarianceTerm, invarianceTerm, varianceTerm } from '../src/align/vicreg.js';
import { alignmentLoss, heterogeneousByolLoss, lossNumbers, type AlignmentInputs } from '../src/align/loss.js';
import { assertClose } from './helpers.js';

type Rows = number[][];
const f64 = (rows: Rows): Tensor => tensor(rows, { dtype: 'float64' });
const columns = (z: Rows): number[][] => z[0]!.map((_, j) => z.map((row) => row[j]!));
const meanOf = (xs: number[]): number => xs.reduce((s, x) => s + x, 0) / xs.length;
/** Unbiased covariance of two columns. */
const covOf = (a: number[], b: number[]): number => {
  const [ma, mb] = [meanOf(a), meanOf(b)];
  return a.reduce((s, x, k) => s + (x - ma) * (b[k]! - mb), 0) / (a.length - 1);
};
function varianceByHand(z: Rows, gamma = 1, eps = 1e-4): number {
  return meanOf(columns(z).map((c) => Math.max(0, gamma - Math.sqrt(covOf(c, c) + eps))));
}
function covarianceByHand(z: Rows): number {
  const cols = columns(z);
  let sum = 0;
  for (let i = 0; i < cols.length; i++) for (let j = 0; j < cols.length; j++) if (i !== j) sum += covOf(cols[i]!, cols[j]!) ** 2;
  return sum / cols.length;
}

/** One modality's alignmentLoss inputs from plain rows, with an optional presence mask. */
function alignmentInputs(rows: Record<'q1' | 'q2' | 'z1' | 'z2' | 'p1' | 'p2', Rows>, mask?: boolean[]): AlignmentInputs {
  const [q1, q2, z1, z2, p1, p2] = [rows.q1, rows.q2, rows.z1, rows.z2, rows.p1, rows.p2].map(f64) as Tensor[];
  return { q1: q1!, q2: q2!, z1: z1!, z2: z2!, p1, p2, present: mask && tensor(mask.map(Number), { dtype: 'bool' }) };
}

const Z = [
  [0.1, 2, -1],
  [0.3, -1, 0.5],
  [0.2, 0.5, 0.4],
  [-0.1, 1, 2],
];

test('the variance term is the mean hinge of γ − std over dimensions', () => {
  // Column 0 has a small spread (hinge active); columns 1 and 2 spread more than γ = 1 (hinge off).
  assertClose(varianceTerm(f64(Z)), varianceByHand(Z), 1e-12);
  assert.ok(varianceByHand(Z) > 0);
  assertClose(varianceTerm(f64(Z), 0.1), varianceByHand(Z, 0.1), 1e-12);
});

test('the covariance term sums the squared off-diagonal covariances over d', () => {
  assertClose(covarianceTerm(f64(Z)), covarianceByHand(Z), 1e-12);
});

test('a collapsed batch gets the largest variance penalty, and decorrelated columns no covariance penalty', () => {
  const collapsed = [
    [1, 2],
    [1, 2],
    [1, 2],
  ];
  assertClose(varianceTerm(f64(collapsed)), 1 - Math.sqrt(1e-4), 1e-12);
  // ±1 columns with zero covariance between them.
  const decorrelated = [
    [1, 1],
    [1, -1],
    [-1, 1],
    [-1, -1],
  ];
  assertClose(covarianceTerm(f64(decorrelated)), 0, 1e-12);
});

test('the gradient of the variance term pushes a shrunken dimension apart', () => {
  const z = f64(Z).requiresGrad_();
  varianceTerm(z).backward();
  const g = columns(z.grad!.toArray() as Rows)[0]!;
  const c0 = columns(Z)[0]!;
  const m = meanOf(c0);
  // Gradient descent moves each entry away from the column mean: −g has the sign of (z − mean).
  for (let k = 0; k < c0.length; k++) assert.ok(-g[k]! * (c0[k]! - m) > 0, `row ${k}`);
});

test('a batch of one row is an error that says why', () => {
  assert.throws(() => varianceTerm(f64([[1, 2]])), /needs a batch \[n, d\] with n ≥ 2/);
});

test('in alignmentLoss the terms use each modality’s present rows, both views, with their weights', () => {
  const P1 = [...Z];
  const P2 = Z.map((row) => row.map((x) => 2 * x - 0.5));
  const Q = Z.map((row) => row.map((x, j) => x + j));
  const present = [true, true, false, true];
  const inputs = (p1: Rows, p2: Rows, mask?: boolean[]): AlignmentInputs => alignmentInputs({ q1: Q, q2: P2, z1: P1, z2: Q, p1, p2 }, mask);
  const outputs = { a: inputs(P1, P2), b: inputs(P2, P1, present) };
  const weights = { intraWeight: 1, crossWeight: 1, infoNceWeight: 0, varianceWeight: 0.5, covarianceWeight: 0.25 };
  const loss = alignmentLoss(outputs, weights);
  const keep = (rows: Rows): Rows => rows.filter((_, k) => present[k]);
  const varA = (varianceByHand(P1) + varianceByHand(P2)) / 2;
  const varB = (varianceByHand(keep(P2)) + varianceByHand(keep(P1))) / 2;
  const covA = (covarianceByHand(P1) + covarianceByHand(P2)) / 2;
  const covB = (covarianceByHand(keep(P2)) + covarianceByHand(keep(P1))) / 2;
  assertClose(loss.variance!.a!, varA, 1e-12);
  assertClose(loss.variance!.b!, varB, 1e-12);
  assertClose(loss.covariance!.a!, covA, 1e-12);
  assertClose(loss.covariance!.b!, covB, 1e-12);
  const byol = heterogeneousByolLoss(outputs, weights).total.item();
  assertClose(loss.total, byol + 0.5 * (varA + varB) + 0.25 * (covA + covB), 1e-12);
  assert.deepEqual(Object.keys(lossNumbers(loss)).sort(), [
    'covariance/a',
    'covariance/b',
    'cross/a->b',
    'cross/b->a',
    'intra/a',
    'intra/b',
    'total',
    'variance/a',
    'variance/b',
  ]);
  // Weights 0 (or absent): the terms are neither computed nor logged.
  for (const plain of [
    alignmentLoss(outputs, { intraWeight: 1, crossWeight: 1, infoNceWeight: 0 }),
    alignmentLoss(outputs, { ...weights, varianceWeight: 0, covarianceWeight: 0 }),
  ]) {
    assert.equal('variance' in plain || 'covariance' in plain, false);
    assertClose(plain.total, byol, 1e-12);
    assert.deepEqual(Object.keys(lossNumbers(plain)).sort(), ['cross/a->b', 'cross/b->a', 'intra/a', 'intra/b', 'total']);
  }
  assert.throws(() => alignmentLoss(outputs, { ...weights, varianceWeight: -1 }), /varianceWeight must be a finite number ≥ 0/);
});

/** s(A, B) by hand: the mean of the squared differences over every entry. */
function invarianceByHand(a: Rows, b: Rows): number {
  return meanOf(a.flatMap((row, k) => row.map((x, j) => (x - b[k]![j]!) ** 2)));
}

test('the invariance term is the mean squared difference, and its gradient reaches both sides', () => {
  const B = Z.map((row) => row.map((x, j) => x * (j + 1) - 0.3));
  assertClose(invarianceTerm(f64(Z), f64(B)), invarianceByHand(Z, B), 1e-12);
  const [a, b] = [f64(Z).requiresGrad_(), f64(B).requiresGrad_()];
  invarianceTerm(a, b).backward();
  // d s / d a = 2 (a − b) / (n d) and d s / d b = −(that): no side is a stop-gradient target.
  const scale = 2 / (Z.length * Z[0]!.length);
  const expected = Z.map((row, k) => row.map((x, j) => scale * (x - B[k]![j]!)));
  assertClose(a.grad!, f64(expected), 1e-12);
  assertClose(b.grad!, f64(expected.map((row) => row.map((x) => -x))), 1e-12);
  assert.throws(
    () => invarianceTerm(f64(Z), f64([[1, 2, 3]])),
    /invarianceTerm: needs two \[n, d\] batches of one shape, got \[4, 3\] and \[1, 3\]/,
  );
});

/** The cosine distance by hand: the mean over rows of 2 − 2·cos(a_k, b_k). */
function cosineInvarianceByHand(a: Rows, b: Rows): number {
  const norm = (row: number[]): number => Math.sqrt(row.reduce((s, x) => s + x * x, 0));
  return meanOf(a.map((row, k) => 2 - (2 * row.reduce((s, x, j) => s + x * b[k]![j]!, 0)) / (norm(row) * norm(b[k]!))));
}

test("the invariance term's cosine distance is 2 − 2·cos per row, blind to lengths, with gradient into both sides", () => {
  const B = Z.map((row) => row.map((x, j) => x * (j + 1) - 0.3));
  assertClose(invarianceTerm(f64(Z), f64(B), 'cosine'), cosineInvarianceByHand(Z, B), 1e-12);
  // Scaling one side's rows changes the squared difference, not the cosine distance.
  const scaled = Z.map((row, k) => row.map((x) => x * (k + 0.5) * 10));
  assertClose(invarianceTerm(f64(scaled), f64(B), 'cosine'), cosineInvarianceByHand(Z, B), 1e-12);
  assert.ok(Math.abs(invarianceTerm(f64(scaled), f64(B)).item() - invarianceByHand(Z, B)) > 1);
  // The gradient against central finite differences of the hand computation, on both sides.
  const [a, b] = [f64(Z).requiresGrad_(), f64(B).requiresGrad_()];
  invarianceTerm(a, b, 'cosine').backward();
  const h = 1e-6;
  const numeric = (side: 'a' | 'b'): Rows =>
    Z.map((row, k) =>
      row.map((_, j) => {
        const nudged = (delta: number): number => {
          const [za, zb] = [Z.map((r) => [...r]), B.map((r) => [...r])];
          (side === 'a' ? za : zb)[k]![j]! += delta;
          return cosineInvarianceByHand(za, zb);
        };
        return (nudged(h) - nudged(-h)) / (2 * h);
      }),
    );
  assertClose(a.grad!, f64(numeric('a')), 1e-7);
  assertClose(b.grad!, f64(numeric('b')), 1e-7);
  assert.throws(() => invarianceTerm(f64(Z), f64(B), 'l1' as 'mse'), /invarianceTerm: distance must be 'mse' or 'cosine', got l1/);
});

test('alignmentLoss measures the invariance term with the weights’ invarianceDistance', () => {
  const P2 = Z.map((row) => row.map((x) => 2 * x - 0.5));
  const R1 = Z.map((row) => row.map((x, j) => x - j));
  const R2 = Z.map((row) => row.map((x) => -x + 0.2));
  const sides = (p1: Rows, p2: Rows): AlignmentInputs => alignmentInputs({ q1: p1, q2: p2, z1: p2, z2: p1, p1, p2 });
  const weights = { intraWeight: 0, crossWeight: 0, infoNceWeight: 0, invarianceWeight: 2, invarianceDistance: 'cosine' as const };
  const loss = alignmentLoss({ a: sides(Z, P2), b: sides(R1, R2) }, weights);
  const expected = (cosineInvarianceByHand(Z, R2) + cosineInvarianceByHand(P2, R1)) / 2;
  assertClose(loss.invariance!['a<->b']!, expected, 1e-12);
  assertClose(loss.total, 2 * expected, 1e-12);
});

test('in alignmentLoss the invariance term pairs view 1 of one modality with view 2 of the other, on rows both have', () => {
  const P2 = Z.map((row) => row.map((x) => 2 * x - 0.5));
  const R1 = Z.map((row) => row.map((x, j) => x - j));
  const R2 = Z.map((row) => row.map((x) => -x));
  const present = [true, false, true, true];
  const sides = (p1: Rows, p2: Rows, mask?: boolean[]): AlignmentInputs =>
    alignmentInputs({ q1: p1, q2: p2, z1: p2, z2: p1, p1, p2 }, mask);
  const outputs = { a: sides(Z, P2), b: sides(R1, R2, present) };
  const keep = (rows: Rows): Rows => rows.filter((_, k) => present[k]);
  const expected = (invarianceByHand(keep(Z), keep(R2)) + invarianceByHand(keep(P2), keep(R1))) / 2;
  const weights = { intraWeight: 0, crossWeight: 0, infoNceWeight: 0, invarianceWeight: 3 };
  const loss = alignmentLoss(outputs, weights);
  assertClose(loss.invariance!['a<->b']!, expected, 1e-12);
  assertClose(loss.total, 3 * expected, 1e-12);
  // Only the weighted term is computed and logged: the BYOL terms, at weight 0, have no keys.
  const numbers = lossNumbers(loss);
  assert.deepEqual(Object.keys(numbers).sort(), ['invariance/a<->b', 'total']);
  assertClose(numbers['invariance/a<->b']!, expected, 1e-12);
  const off = alignmentLoss(outputs, { ...weights, invarianceWeight: 0, intraWeight: 1 });
  assert.equal('invariance' in off, false);
  assert.deepEqual(Object.keys(lossNumbers(off)).sort(), ['intra/a', 'intra/b', 'total']);
});

test('a VICReg term with no rows to measure is 0 in the graph and still recorded', () => {
  // b is present in one item only: too few rows for a spread.
  const P2 = Z.map((row) => row.map((x) => 2 * x - 0.5));
  const sides = (p1: Rows, p2: Rows, mask?: boolean[]): AlignmentInputs =>
    alignmentInputs({ q1: p1, q2: p2, z1: p2, z2: p1, p1, p2 }, mask);
  const weights = { intraWeight: 0, crossWeight: 0, infoNceWeight: 0, varianceWeight: 1, covarianceWeight: 1, invarianceWeight: 1 };
  const lonely = alignmentLoss({ a: sides(Z, P2), b: sides(P2, Z, [false, true, false, false]) }, weights);
  assert.equal(lonely.variance!.b!.item(), 0);
  assert.equal(lonely.covariance!.b!.item(), 0);
  assertClose(lonely.variance!.a!, (varianceByHand(Z) + varianceByHand(P2)) / 2, 1e-12);
  // b is absent from every item: no pair rows for the invariance term either.
  const absent = sides(P2, Z, [false, false, false, false]);
  absent.p1!.requiresGrad_();
  const loss = alignmentLoss({ a: sides(Z, P2), b: absent }, weights);
  assert.equal(loss.invariance!['a<->b']!.item(), 0);
  assert.equal(loss.variance!.b!.item(), 0);
  const expected = (varianceByHand(Z) + varianceByHand(P2)) / 2 + (covarianceByHand(Z) + covarianceByHand(P2)) / 2;
  assertClose(loss.total, expected, 1e-12);
  assert.deepEqual(Object.keys(lossNumbers(loss)).sort(), [
    'covariance/a',
    'covariance/b',
    'invariance/a<->b',
    'total',
    'variance/a',
    'variance/b',
  ]);
  // Backward runs through the zeros and gives b's projections zero gradients (not none, not NaN).
  loss.total.backward();
  assert.deepEqual(absent.p1!.grad!.toFlatArray(), new Array(12).fill(0));
});

test('with three modalities every term between two of them is divided by M − 1 = 2; each modality’s own terms are not', () => {
  // Rows of a deterministic, distinct sequence per modality and tensor.
  const rows = (seed: number): Rows => Z.map((row, i) => row.map((x, j) => Math.sin(seed + 3 * i + j) + x));
  const inputs = (base: number, mask?: boolean[]): AlignmentInputs =>
    alignmentInputs(
      { q1: rows(base), q2: rows(base + 1), z1: rows(base + 2), z2: rows(base + 3), p1: rows(base + 4), p2: rows(base + 5) },
      mask,
    );
  const outputs = { a: inputs(0), b: inputs(10, [true, true, false, true]), c: inputs(20, [true, false, true, true]) };
  const weights = {
    intraWeight: 0.7,
    crossWeight: 0.3,
    infoNceWeight: 0,
    varianceWeight: 25,
    covarianceWeight: 1,
    invarianceWeight: 5,
  };
  const loss = alignmentLoss(outputs, weights);
  const sum = (values: Record<string, Tensor> | undefined): number => Object.values(values!).reduce((s, t) => s + t.item(), 0);
  assert.equal(Object.keys(loss.cross!).length, 6);
  assert.equal(Object.keys(loss.invariance!).length, 3);
  const expected =
    0.7 * sum(loss.intra) +
    (0.3 / 2) * sum(loss.cross) +
    25 * sum(loss.variance) +
    1 * sum(loss.covariance) +
    (5 / 2) * sum(loss.invariance);
  assertClose(loss.total, expected, 1e-12);
  // With two of them the factor is 1: the objective of every two-modality run is unchanged.
  const two = alignmentLoss({ a: outputs.a, b: outputs.b }, weights);
  assertClose(
    two.total,
    0.7 * sum(two.intra) + 0.3 * sum(two.cross) + 25 * sum(two.variance) + sum(two.covariance) + 5 * sum(two.invariance),
    1e-12,
  );
  assert.equal(lossNumbers(loss)['cross/b->c'], loss.cross!['b->c']!.item());
});
