// The alignment losses against hand computation in plain JS: heterogeneous BYOL's intra and cross
// terms with presence masks, CLIP's symmetric InfoNCE, the logit scale, their combination, and the
// policy for a term whose weight is 0 (not computed, no values).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tensor, randn, manualSeed, type Tensor } from '../src/index.js';
import { symmetricByolLoss } from '../src/byol/loss.js';
import { alignmentLoss, heterogeneousByolLoss, lossNumbers, type AlignmentInputs } from '../src/align/loss.js';
import { ALIGNMENT_OBJECTIVES } from '../src/config/objectives.js';
import { LogitScale, symmetricInfoNce } from '../src/align/infonce.js';
import { assertClose } from './helpers.js';

// ---- plain-JS reference ----
type Rows = number[][];
const dot = (u: number[], v: number[]): number => u.reduce((s, x, i) => s + x * v[i]!, 0);
const cos = (u: number[], v: number[]): number => dot(u, v) / Math.sqrt(dot(u, u) * dot(v, v));
/** BYOL's ℓ(q, z) = 2 − 2 cos(q, z) of one item. */
const ell = (q: number[], z: number[]): number => 2 - 2 * cos(q, z);
/** mean over `items` of ℓ(qa1, zb2) + ℓ(qa2, zb1). */
const pairTerm = (qa1: Rows, qa2: Rows, zb1: Rows, zb2: Rows, items: number[]): number =>
  items.reduce((s, i) => s + ell(qa1[i]!, zb2[i]!) + ell(qa2[i]!, zb1[i]!), 0) / items.length;
/** ½ [CE over rows + CE over columns] of s · cos(a_i, b_j), by explicit log-softmax. */
function infoNceByHand(a: Rows, b: Rows, scale: number): number {
  const logits = a.map((ai) => b.map((bj) => scale * cos(ai, bj)));
  const n = a.length;
  let rows = 0;
  let cols = 0;
  for (let i = 0; i < n; i++) {
    rows += -(logits[i]![i]! - Math.log(logits[i]!.reduce((s, l) => s + Math.exp(l), 0)));
    cols += -(logits[i]![i]! - Math.log(logits.reduce((s, row) => s + Math.exp(row[i]!), 0)));
  }
  return (rows / n + cols / n) / 2;
}

const f64 = (rows: Rows): Tensor => tensor(rows, { dtype: 'float64' });
const mask = (bits: boolean[]): Tensor => tensor(bits.map(Number), { dtype: 'bool' });

// Two modalities, three items; b is missing for item 1, whose rows hold NaN to show they never count.
const A = {
  q1: [
    [1, 0],
    [0, 1],
    [1, 1],
  ],
  q2: [
    [1, 2],
    [-1, 0],
    [0, 1],
  ],
  z1: [
    [2, 1],
    [1, 1],
    [0, -1],
  ],
  z2: [
    [1, 0],
    [3, 4],
    [-1, 1],
  ],
};
const B = {
  q1: [
    [0, 1],
    [NaN, NaN],
    [1, -1],
  ],
  q2: [
    [1, 1],
    [NaN, NaN],
    [2, 1],
  ],
  z1: [
    [1, 3],
    [NaN, NaN],
    [1, 0],
  ],
  z2: [
    [-2, 1],
    [NaN, NaN],
    [0, 2],
  ],
};
const bPresent = [true, false, true];

function inputs(rows: typeof A, present?: boolean[]): AlignmentInputs {
  return { q1: f64(rows.q1), q2: f64(rows.q2), z1: f64(rows.z1), z2: f64(rows.z2), present: present && mask(present) };
}

test('the heterogeneous loss matches a hand computation, absent items left out', () => {
  const loss = heterogeneousByolLoss(
    new Map([
      ['a', inputs(A)],
      ['b', inputs(B, bPresent)],
    ]),
    { intraWeight: 0.7, crossWeight: 0.3 },
  );
  const intraA = pairTerm(A.q1, A.q2, A.z1, A.z2, [0, 1, 2]);
  const intraB = pairTerm(B.q1, B.q2, B.z1, B.z2, [0, 2]);
  const crossAB = pairTerm(A.q1, A.q2, B.z1, B.z2, [0, 2]);
  const crossBA = pairTerm(B.q1, B.q2, A.z1, A.z2, [0, 2]);
  assertClose(loss.intra!.a!, intraA, 1e-12);
  assertClose(loss.intra!.b!, intraB, 1e-12);
  assertClose(loss.cross!['a->b']!, crossAB, 1e-12);
  assertClose(loss.cross!['b->a']!, crossBA, 1e-12);
  assert.deepEqual(Object.keys(loss.cross!), ['a->b', 'b->a']);
  assertClose(loss.total, 0.7 * (intraA + intraB) + 0.3 * (crossAB + crossBA), 1e-12);
});

test('a modality absent from every item contributes 0, not NaN', () => {
  const loss = heterogeneousByolLoss({ a: inputs(A), b: inputs(B, [false, false, false]) }, { intraWeight: 1, crossWeight: 1 });
  assert.equal(loss.intra!.b!.item(), 0);
  assert.equal(loss.cross!['a->b']!.item(), 0);
  assert.equal(loss.cross!['b->a']!.item(), 0);
  assertClose(loss.total, pairTerm(A.q1, A.q2, A.z1, A.z2, [0, 1, 2]), 1e-12);
});

test('with nothing present the total is 0 and backward gives zero gradients', () => {
  const q1 = f64(A.q1).requiresGrad_();
  const none = mask([false, false, false]);
  const loss = heterogeneousByolLoss({ a: { q1, q2: f64(A.q2), z1: f64(A.z1), z2: f64(A.z2), present: none } });
  assert.equal(loss.total.item(), 0);
  loss.total.backward();
  assert.deepEqual(q1.grad!.toFlatArray(), [0, 0, 0, 0, 0, 0]);
});

test('one modality with crossWeight 0 is exactly symmetricByolLoss', () => {
  manualSeed(3);
  const [q1, q2, z1, z2] = [randn([5, 4]), randn([5, 4]), randn([5, 4]), randn([5, 4])];
  const expected = symmetricByolLoss(q1, q2, z1, z2).item();
  const weights = { intraWeight: 1, crossWeight: 0 };
  assert.equal(heterogeneousByolLoss({ only: { q1, q2, z1, z2 } }, weights).total.item(), expected);
  const allPresent = mask([true, true, true, true, true]);
  assert.equal(heterogeneousByolLoss({ only: { q1, q2, z1, z2, present: allPresent } }, weights).total.item(), expected);
});

test('the cross term is symmetric: listing the modalities the other way round changes nothing', () => {
  const weights = { intraWeight: 0, crossWeight: 1 };
  const ab = heterogeneousByolLoss({ a: inputs(A), b: inputs(B, bPresent) }, weights);
  const ba = heterogeneousByolLoss({ b: inputs(B, bPresent), a: inputs(A) }, weights);
  assertClose(ab.total, ba.total.item(), 1e-12);
  assertClose(ab.cross!['a->b']!, ba.cross!['a->b']!.item(), 1e-15);
});

test('the loss needs no target gradient and sends none to the targets', () => {
  const q1 = f64(A.q1).requiresGrad_();
  const q2 = f64(A.q2).requiresGrad_();
  // Targets as the caller passes them: detached, so not requiring grad.
  const plain = heterogeneousByolLoss({ a: { q1, q2, z1: f64(A.z1), z2: f64(A.z2) } });
  plain.total.backward();
  assert.notEqual(q1.grad, null);
  assert.notEqual(q2.grad, null);
  // Even targets that do require grad get none.
  const z1 = f64(A.z1).requiresGrad_();
  const z2 = f64(A.z2).requiresGrad_();
  heterogeneousByolLoss({ a: { q1, q2, z1, z2 }, b: { q1: q2, q2: q1, z1: z2, z2: z1 } }).total.backward();
  assert.equal(z1.grad, null);
  assert.equal(z2.grad, null);
});

test('a term with weight 0 is not computed: it has no values and no part in the total', () => {
  const intraA = pairTerm(A.q1, A.q2, A.z1, A.z2, [0, 1, 2]);
  const intraB = pairTerm(B.q1, B.q2, B.z1, B.z2, [0, 2]);
  const intraOnly = heterogeneousByolLoss({ a: inputs(A), b: inputs(B, bPresent) }, ALIGNMENT_OBJECTIVES.intraOnly);
  assert.equal('cross' in intraOnly, false);
  assertClose(intraOnly.intra!.a!, intraA, 1e-12);
  assertClose(intraOnly.total, intraA + intraB, 1e-12);
  assert.deepEqual(Object.keys(lossNumbers(intraOnly)).sort(), ['intra/a', 'intra/b', 'total']);
  const crossOnly = heterogeneousByolLoss({ a: inputs(A), b: inputs(B, bPresent) }, ALIGNMENT_OBJECTIVES.crossOnly);
  assert.equal('intra' in crossOnly, false);
  const crossAB = pairTerm(A.q1, A.q2, B.z1, B.z2, [0, 2]);
  const crossBA = pairTerm(B.q1, B.q2, A.z1, A.z2, [0, 2]);
  assertClose(crossOnly.total, crossAB + crossBA, 1e-12);
  const numbers = lossNumbers(crossOnly);
  assert.deepEqual(Object.keys(numbers).sort(), ['cross/a->b', 'cross/b->a', 'total']);
  assertClose([numbers['cross/a->b']!, numbers['cross/b->a']!], [crossAB, crossBA], 1e-12);
});

test('with crossWeight 0 nothing compares two modalities, so their widths may differ', () => {
  const wide = { q1: randn([3, 4]), q2: randn([3, 4]), z1: randn([3, 4]), z2: randn([3, 4]) };
  const loss = heterogeneousByolLoss({ a: inputs(A), wide }, ALIGNMENT_OBJECTIVES.intraOnly);
  assert.deepEqual(Object.keys(loss.intra!), ['a', 'wide']);
  assertClose(loss.intra!.a!, pairTerm(A.q1, A.q2, A.z1, A.z2, [0, 1, 2]), 1e-12);
});

test('bad inputs are errors naming the modality, the tensor and the shapes', () => {
  const a = inputs(A);
  assert.throws(() => heterogeneousByolLoss({ a: { ...a, z2: f64([[1, 2]]) } }), /a\.z2 has shape \[1, 2\], expected \[3, 2\] as a\.q1/);
  assert.throws(
    () => heterogeneousByolLoss({ a, b: { ...a, present: tensor([1, 0, 1]) } }),
    /b\.present must be a bool tensor of shape \[3\], got float32/,
  );
  const two = { q1: f64(A.q1.slice(0, 2)), q2: f64(A.q2.slice(0, 2)), z1: f64(A.z1.slice(0, 2)), z2: f64(A.z2.slice(0, 2)) };
  assert.throws(() => heterogeneousByolLoss({ a, b: two }), /b has 2 rows, expected 3 as a/);
  assert.throws(() => heterogeneousByolLoss({ a }, { intraWeight: -1, crossWeight: 0 }), /intraWeight must be a finite number ≥ 0/);
  const wide = { q1: randn([3, 4]), q2: randn([3, 4]), z1: randn([3, 4]), z2: randn([3, 4]) };
  assert.throws(() => heterogeneousByolLoss({ a, wide }), /widths differ \(2 and 4\)/);
});

// ---- InfoNCE ----
const P: Rows = [
  [1, 0],
  [1, 1],
  [-1, 2],
];
const Q: Rows = [
  [2, 1],
  [0, 1],
  [-1, 1],
];

test('InfoNCE matches log-softmax by hand in both directions', () => {
  const { loss, scale } = symmetricInfoNce(f64(P), f64(Q), 2);
  assertClose(loss, infoNceByHand(P, Q, 2), 1e-12);
  assert.equal(scale.item(), 2);
});

test('InfoNCE is symmetric in its two modalities', () => {
  assertClose(symmetricInfoNce(f64(P), f64(Q), 3).loss, symmetricInfoNce(f64(Q), f64(P), 3).loss.item(), 1e-12);
});

test('InfoNCE uses only the paired rows, neither as anchors nor as negatives', () => {
  const withGap = f64([P[0]!, [NaN, NaN], P[1]!, P[2]!]);
  const other = f64([Q[0]!, [5, 5], Q[1]!, Q[2]!]);
  const { loss } = symmetricInfoNce(withGap, other, 2, mask([true, false, true, true]));
  assertClose(loss, infoNceByHand(P, Q, 2), 1e-12);
  assert.equal(symmetricInfoNce(withGap, other, 2, mask([false, false, false, false])).loss.item(), 0);
});

test('the logit scale starts at 1/0.07, is clamped at 100, and learns', () => {
  const logitScale = new LogitScale();
  assertClose(logitScale.logScale, Math.log(1 / 0.07), 1e-6);
  assertClose(logitScale.forward(), 1 / 0.07, 1e-4);
  assert.deepEqual(
    logitScale.namedParameters().map(([name]) => name),
    ['logit_scale'],
  );
  // Past the bound, forward() still gives 100, and clamp_() brings the parameter back.
  logitScale.logScale.detach().fill_(Math.log(250));
  assertClose(logitScale.forward(), 100, 1e-3);
  logitScale.clamp_();
  assertClose(logitScale.logScale, Math.log(100), 1e-6);
  // Below the bound the gradient reaches the parameter.
  const learning = new LogitScale({ initialScale: 2 });
  const { loss, scale } = symmetricInfoNce(f64(P), f64(Q), learning);
  assertClose(scale, 2, 1e-6);
  assertClose(loss, infoNceByHand(P, Q, 2), 1e-6);
  loss.backward();
  assert.ok(Math.abs(learning.logScale.grad!.item()) > 0);
});

// ---- the combination ----
function withProjections(rows: typeof A, present?: boolean[]): AlignmentInputs {
  // Projections p1, p2 reuse the prediction rows: any [N, e] tensors do.
  return { ...inputs(rows, present), p1: f64(rows.q1), p2: f64(rows.q2) };
}

test('each objective is one weights value: InfoNCE alone, BYOL, and both', () => {
  const outputs = { a: withProjections(A), b: withProjections(B, bPresent) };
  const logitScale = new LogitScale({ initialScale: 2 });
  const pick = (rows: Rows): Rows => [rows[0]!, rows[2]!];
  const expectedNce = (infoNceByHand(pick(A.q1), pick(B.q2), 2) + infoNceByHand(pick(A.q2), pick(B.q1), 2)) / 2;

  const nce = alignmentLoss(outputs, ALIGNMENT_OBJECTIVES.infoNce, logitScale);
  assertClose(nce.total, expectedNce, 1e-6);
  assertClose(nce.infoNce!['a<->b']!, expectedNce, 1e-6);
  assert.equal('intra' in nce || 'cross' in nce, false);
  assertClose(nce.logitScale!, 2, 1e-6);

  const byol = alignmentLoss(outputs, ALIGNMENT_OBJECTIVES.byol);
  assertClose(byol.total, heterogeneousByolLoss(outputs, ALIGNMENT_OBJECTIVES.byol).total.item(), 1e-12);
  assert.equal('infoNce' in byol || 'logitScale' in byol, false);
  // Given a LogitScale but weight 0, InfoNCE is still not computed: no value, no logit scale logged.
  const unweighted = alignmentLoss(outputs, ALIGNMENT_OBJECTIVES.byol, logitScale);
  assert.deepEqual(Object.keys(lossNumbers(unweighted)).sort(), ['cross/a->b', 'cross/b->a', 'intra/a', 'intra/b', 'total']);

  const both = alignmentLoss(outputs, ALIGNMENT_OBJECTIVES.byolInfoNce, logitScale);
  assertClose(both.total, byol.total.item() + expectedNce, 1e-6);

  const numbers = lossNumbers(both);
  assert.deepEqual(Object.keys(numbers).sort(), ['cross/a->b', 'cross/b->a', 'infonce/a<->b', 'intra/a', 'intra/b', 'logitScale', 'total']);
});

test('a positive InfoNCE weight without a LogitScale or projections is an error saying what to pass', () => {
  assert.throws(() => alignmentLoss({ a: withProjections(A) }, ALIGNMENT_OBJECTIVES.infoNce), /no LogitScale was given/);
  assert.throws(
    () => alignmentLoss({ a: withProjections(A), b: inputs(A) }, ALIGNMENT_OBJECTIVES.infoNce, new LogitScale()),
    /need b\.p1 and b\.p2/,
  );
});
