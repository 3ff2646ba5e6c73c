// The heterogeneous BYOL objective. Each modality m has online predictions q^m_v and target
// projections z^m_v of its two views v ∈ {1, 2} and a presence mask (an item may lack a modality).
// With BYOL's regression loss ℓ(q, z) = ‖q̄ − z̄‖² = 2 − 2·cos(q, z) (src/byol/loss.ts):
//
//   L = λ_intra · Σ_m       mean_{i: m present}      [ℓ(q^m_1, z^m_2) + ℓ(q^m_2, z^m_1)]
//     + λ_cross/(M−1) · Σ_{m ≠ n} mean_{i: m, n present}   [ℓ(q^m_1, z^n_2) + ℓ(q^m_2, z^n_1)]
//
// over the model's M modalities. Every term between two modalities (cross, InfoNCE, VICReg's
// invariance) is divided by M − 1, the number of partners each modality has: each modality then
// weighs its pair terms against its own terms (intra, VICReg's variance and covariance) as it does
// with two modalities, where the factor is 1. Summed undivided, three modalities' six cross terms
// outweighed their spread terms twice as much as two modalities' two did, and the spoken icon run
// partly collapsed (docs/audio.md).
//
// The intra term is BYOL itself per modality (Grill et al. 2020, arXiv:2006.07733, eq. 2–3); in the
// cross term one modality's prediction regresses the other's target projection of the same item, and
// both ordered pairs (m, n) and (n, m) appear, so it is symmetric. With one modality and λ_cross = 0,
// L is exactly symmetricByolLoss. alignmentLoss() adds CLIP's InfoNCE (infonce.ts) with a third
// weight and, optionally, VICReg's variance, covariance and invariance terms on the online projections
// (vicreg.ts), so every objective of the study is one AlignmentLossWeights value (the named ones are
// data: src/config/objectives.ts).
//
// Two policies hold for every term (ALIGNMENT_TERMS lists the six):
//   - A term whose weight is 0 is not computed: no forward pass, no gradient, no value. Its record is
//     absent from the result and its keys from lossNumbers, so a logged value is always one of a
//     term that trains the model.
//   - A term with no rows (no item has the modality, or both modalities of the pair; for variance
//     and covariance, fewer than the two rows a spread needs) is 0 inside the autograd graph
//     (rows.ts graphZero), not the NaN of a mean over nothing, and its value 0 is recorded.
import { noGrad, tidy, type Tensor } from '../engine/index.js';
import { symmetricByolLoss } from '../byol/loss.js';
import { symmetricInfoNce, type LogitScale } from './infonce.js';
import { bothPresent, checkMask, graphZero, presentRows, rowCount, takeRows } from './rows.js';
import { covarianceTerm, invarianceTerm, varianceTerm, type InvarianceDistance } from './vicreg.js';

/** What the BYOL terms need of one modality: [N, d] tensors over the whole batch, and who is present. */
export interface ByolTermInputs {
  /** Online predictions of view 1 and view 2. */
  q1: Tensor;
  q2: Tensor;
  /** Target projections of view 1 and view 2; the caller detaches them (the loss never needs their gradient). */
  z1: Tensor;
  z2: Tensor;
  /** bool [N]: the item has this modality; absent means all N have it. Absent rows may hold anything. */
  present?: Tensor;
}

/** What the combined objective needs: the BYOL inputs plus, for InfoNCE, the online projections. */
export interface AlignmentInputs extends ByolTermInputs {
  /** Online projections of view 1 and view 2 [N, e] (with gradient); needed only for InfoNCE and the VICReg terms. */
  p1?: Tensor;
  p2?: Tensor;
}

/** Per-modality values by modality name, as a Map (AlignModel.forwardViews) or a plain object. */
export type PerModality<T> = ReadonlyMap<string, T> | Readonly<Record<string, T>>;

/**
 * The weights of the terms, one each. Every objective of the study is one value of this type; the
 * named ones are ALIGNMENT_OBJECTIVES (src/config/objectives.ts).
 */
export interface AlignmentLossWeights {
  /** λ_intra: each modality's own BYOL loss between its two views. */
  intraWeight: number;
  /** λ_cross: one modality's prediction regressing another's target projection, every ordered pair. */
  crossWeight: number;
  /** Weight of CLIP's symmetric InfoNCE, summed over unordered modality pairs. */
  infoNceWeight: number;
  /** Weight of VICReg's variance hinge on each modality's online projections (default 0: not computed). */
  varianceWeight?: number;
  /** Weight of VICReg's covariance term on each modality's online projections (default 0: not computed). */
  covarianceWeight?: number;
  /**
   * Weight of VICReg's invariance term between every two modalities' online projections of the same
   * item (default 0: not computed): no predictor, no stop-gradient, so it is VICReg's alignment, not BYOL's.
   */
  invarianceWeight?: number;
  /** How the invariance term measures two projections: 'mse' (VICReg's, the default) or 'cosine' (2 − 2·cos, vicreg.ts). */
  invarianceDistance?: InvarianceDistance;
}

/**
 * The six terms of the objective: the weight that switches each on, and the name its values take in
 * a log line ('<logName>/<key>', see lossNumbers).
 */
export const ALIGNMENT_TERMS = {
  /** Each modality's BYOL loss between its two views, by modality name. */
  intra: { weight: 'intraWeight', logName: 'intra' },
  /** Each ordered pair's cross-modal regression, by crossKey(m, n) = 'm->n'. */
  cross: { weight: 'crossWeight', logName: 'cross' },
  /** Each unordered pair's InfoNCE (mean of its two view pairings), by pairKey(m, n) = 'm<->n'. */
  infoNce: { weight: 'infoNceWeight', logName: 'infonce' },
  /** Each modality's VICReg variance term (mean of its two views), by modality name. */
  variance: { weight: 'varianceWeight', logName: 'variance' },
  /** Each modality's VICReg covariance term (mean of its two views), by modality name. */
  covariance: { weight: 'covarianceWeight', logName: 'covariance' },
  /** Each unordered pair's VICReg invariance term (mean of its two view pairings), by pairKey(m, n). */
  invariance: { weight: 'invarianceWeight', logName: 'invariance' },
} as const satisfies Record<string, { weight: keyof AlignmentLossWeights; logName: string }>;

export type AlignmentTerm = keyof typeof ALIGNMENT_TERMS;

/** One term's values before its weight, detached, by modality name or pair key. */
export type TermValues = Record<string, Tensor>;

/** Each term's values: present exactly when its weight is above 0 (the policies at the top of this file). */
export type AlignmentTermValues = { -readonly [T in keyof typeof ALIGNMENT_TERMS]?: TermValues };

export interface HeterogeneousByolLoss extends Pick<AlignmentTermValues, 'intra' | 'cross'> {
  /** λ_intra Σ intra + λ_cross Σ cross, with gradient. */
  total: Tensor;
}

export interface AlignmentLoss extends AlignmentTermValues {
  /** Σ over the weighted terms of weight · Σ values, with gradient. */
  total: Tensor;
  /** The InfoNCE logit scale used (detached): present exactly when infoNce is. */
  logitScale?: Tensor;
}

/** The key of the ordered pair (m, n) in the cross term's values: q^m regresses z^n. */
export function crossKey(m: string, n: string): string {
  return `${m}->${n}`;
}

/** The key of the unordered pair {m, n} in the infoNce and invariance terms' values. */
export function pairKey(m: string, n: string): string {
  return `${m}<->${n}`;
}

type Entry<T> = [name: string, inputs: T];

function entriesOf<T>(values: PerModality<T>): Entry<T>[] {
  return values instanceof Map ? [...values.entries()] : Object.entries(values as Record<string, T>);
}

/** Every ordered pair (m, n) of distinct entries, in the entries' order. */
function orderedPairs<T>(entries: Entry<T>[]): [Entry<T>, Entry<T>][] {
  return entries.flatMap((m, i) => entries.filter((_, j) => j !== i).map((n): [Entry<T>, Entry<T>] => [m, n]));
}

/** Every unordered pair {m, n} of the entries, each once, in the entries' order. */
function unorderedPairs<T>(entries: Entry<T>[]): [Entry<T>, Entry<T>][] {
  return entries.flatMap((m, i) => entries.slice(i + 1).map((n): [Entry<T>, Entry<T>] => [m, n]));
}

function checkWeight(weights: Partial<AlignmentLossWeights>, key: keyof AlignmentLossWeights, where: string, optional = false): number {
  const w = optional ? (weights[key] ?? 0) : weights[key];
  if (typeof w !== 'number' || !(w >= 0) || !Number.isFinite(w))
    throw new RangeError(`${where}: ${key} must be a finite number ≥ 0, got ${w}`);
  return w;
}

/** Checks that every modality's q1, q2, z1, z2 share one [N, d] shape, N common to all; returns N. */
function checkInputs(entries: Entry<ByolTermInputs>[], where: string): number {
  if (entries.length === 0) throw new RangeError(`${where}: no modalities given`);
  let n: number | undefined;
  for (const [name, inputs] of entries) {
    const reference = inputs.q1.shape;
    if (reference.length !== 2) throw new RangeError(`${where}: ${name}.q1 must be [N, d], got [${reference.join(', ')}]`);
    for (const key of ['q2', 'z1', 'z2'] as const) {
      const shape = inputs[key].shape;
      if (shape.length !== 2 || shape[0] !== reference[0] || shape[1] !== reference[1]) {
        throw new RangeError(`${where}: ${name}.${key} has shape [${shape.join(', ')}], expected [${reference.join(', ')}] as ${name}.q1`);
      }
    }
    if (n === undefined) n = reference[0]!;
    else if (reference[0] !== n) {
      throw new RangeError(
        `${where}: ${name} has ${reference[0]} rows, expected ${n} as ${entries[0]![0]}: every modality spans the whole batch`,
      );
    }
    if (inputs.present !== undefined) checkMask(inputs.present, n, `${where}: ${name}.present`);
  }
  return n!;
}

/** The cross term compares one modality's predictions with another's targets: their widths must agree. */
function checkCrossWidths(entries: Entry<ByolTermInputs>[], where: string): void {
  const d = entries[0]![1].q1.shape[1];
  const other = entries.find(([, o]) => o.q1.shape[1] !== d);
  if (other) {
    throw new RangeError(
      `${where}: the cross term compares ${entries[0]![0]} and ${other[0]}, but their widths differ ` +
        `(${d} and ${other[1].q1.shape[1]}); project every modality to one projectionDim`,
    );
  }
}

/** Checks that InfoNCE and the VICReg terms have every modality's online projections. */
function checkProjections(entries: Entry<AlignmentInputs>[], where: string): void {
  for (const [name, m] of entries) {
    if (m.p1 === undefined || m.p2 === undefined)
      throw new TypeError(`${where}: InfoNCE and the VICReg terms need ${name}.p1 and ${name}.p2 (online projections)`);
  }
}

/** A total built term by term, under the two policies at the top of this file. */
class WeightedTerms {
  readonly values: AlignmentTermValues = {};
  readonly #weighted: Tensor[] = [];

  /** Adds weight · Σ_k value_k and records each value; with weight 0, `compute` is never called. */
  add(term: AlignmentTerm, weight: number, compute: () => [key: string, value: Tensor][]): void {
    if (weight === 0) return;
    const keyed = compute();
    this.values[term] = Object.fromEntries(keyed.map(([key, value]) => [key, value.detach()]));
    // A term over pairs has no values with one modality: a sum over nothing adds nothing.
    if (keyed.length === 0) return;
    const sum = keyed.map(([, value]) => value).reduce((partial, value) => partial.add(value));
    this.#weighted.push(sum.mul(weight));
  }

  /** The sum of the weighted terms; with none, 0 in the graph of `anchor`. */
  total(anchor: Tensor): Tensor {
    return this.#weighted.length === 0 ? graphZero(anchor) : this.#weighted.reduce((sum, t) => sum.add(t));
  }
}

/** 1/(M − 1): the factor of every term between two of the M modalities (the top of this file); 1 for M ≤ 2. */
function pairShare(entries: readonly unknown[]): number {
  return entries.length > 2 ? 1 / (entries.length - 1) : 1;
}

/**
 * mean over the rows in `mask` of ℓ(qa1, zb2) + ℓ(qa2, zb1): symmetricByolLoss on those rows, or
 * 0 (in the graph) when there are none.
 */
function maskedSymmetricByol(a: ByolTermInputs, b: ByolTermInputs, mask: Tensor | undefined, n: number): Tensor {
  const rows = presentRows(mask, n);
  if (rows.kind === 'none') return graphZero(a.q1, a.q2);
  return symmetricByolLoss(takeRows(a.q1, rows), takeRows(a.q2, rows), takeRows(b.z1, rows), takeRows(b.z2, rows));
}

/** λ_intra's and λ_cross's terms (the equation at the top of this file). */
function addByolTerms(terms: WeightedTerms, entries: Entry<ByolTermInputs>[], n: number, intraWeight: number, crossWeight: number): void {
  terms.add('intra', intraWeight, () => entries.map(([name, m]) => [name, maskedSymmetricByol(m, m, m.present, n)]));
  terms.add('cross', crossWeight * pairShare(entries), () =>
    orderedPairs(entries).map(([[nameM, m], [nameN, other]]) => [
      crossKey(nameM, nameN),
      maskedSymmetricByol(m, other, bothPresent(m.present, other.present), n),
    ]),
  );
}

/**
 * The heterogeneous BYOL loss (see the top of this file). A term whose weight is 0 is not computed
 * and has no values in the result.
 *
 * @example
 * const outputs = model.forwardViews(views, batchSize); // Map<modality, {q1, q2, z1, z2, present}>
 * const { total, intra, cross } = heterogeneousByolLoss(outputs, { intraWeight: 1, crossWeight: 1 });
 * total.backward();
 * intra!.image.item(); cross!['image->text'].item();
 */
export function heterogeneousByolLoss(
  outputs: PerModality<ByolTermInputs>,
  weights: Pick<AlignmentLossWeights, 'intraWeight' | 'crossWeight'> = { intraWeight: 1, crossWeight: 1 },
): HeterogeneousByolLoss {
  const where = 'heterogeneousByolLoss';
  const intraWeight = checkWeight(weights, 'intraWeight', where);
  const crossWeight = checkWeight(weights, 'crossWeight', where);
  const entries = entriesOf(outputs);
  const n = checkInputs(entries, where);
  if (crossWeight > 0) checkCrossWidths(entries, where);
  return tidy(() => {
    const terms = new WeightedTerms();
    addByolTerms(terms, entries, n, intraWeight, crossWeight);
    return { total: terms.total(entries[0]![1].q1), ...terms.values };
  });
}

/**
 * The combined objective: heterogeneous BYOL (intra and cross terms) plus CLIP's symmetric InfoNCE
 * between every unordered pair of modalities, on the online projections of the rows where both are
 * present. Each pair's InfoNCE averages its two view pairings, ½[I(p^m_1, p^n_2) + I(p^m_2, p^n_1)],
 * mirroring the cross term; a positive infoNceWeight needs the LogitScale the optimizer trains.
 * VICReg's variance and covariance terms act on each modality's online projections of its present
 * rows, averaged over the two views; its invariance term on every pair's online projections of the
 * rows both have, averaged over the two view pairings. A term whose weight is 0 is not computed.
 *
 * @example
 * const logitScale = new LogitScale();
 * const loss = alignmentLoss(model.forwardViews(views, n), ALIGNMENT_OBJECTIVES.byolInfoNce, logitScale);
 * loss.total.backward();
 */
export function alignmentLoss(
  outputs: PerModality<AlignmentInputs>,
  weights: AlignmentLossWeights,
  logitScale?: LogitScale,
): AlignmentLoss {
  const where = 'alignmentLoss';
  const intraWeight = checkWeight(weights, 'intraWeight', where);
  const crossWeight = checkWeight(weights, 'crossWeight', where);
  const infoNceWeight = checkWeight(weights, 'infoNceWeight', where);
  const varianceWeight = checkWeight(weights, 'varianceWeight', where, true);
  const covarianceWeight = checkWeight(weights, 'covarianceWeight', where, true);
  const invarianceWeight = checkWeight(weights, 'invarianceWeight', where, true);
  if (infoNceWeight > 0 && logitScale === undefined) {
    throw new TypeError(
      `${where}: infoNceWeight is ${infoNceWeight} but no LogitScale was given; pass the LogitScale the optimizer trains`,
    );
  }
  const entries = entriesOf(outputs);
  const n = checkInputs(entries, where);
  if (crossWeight > 0) checkCrossWidths(entries, where);
  if (infoNceWeight + varianceWeight + covarianceWeight + invarianceWeight > 0) checkProjections(entries, where);
  return tidy(() => {
    const terms = new WeightedTerms();
    addByolTerms(terms, entries, n, intraWeight, crossWeight);
    terms.add('infoNce', infoNceWeight * pairShare(entries), () =>
      unorderedPairs(entries).map(([[nameM, m], [nameN, other]]) => {
        const paired = bothPresent(m.present, other.present);
        const ab = symmetricInfoNce(m.p1!, other.p2!, logitScale!, paired).loss;
        const ba = symmetricInfoNce(m.p2!, other.p1!, logitScale!, paired).loss;
        return [pairKey(nameM, nameN), ab.add(ba).div(2)];
      }),
    );
    terms.add('invariance', invarianceWeight * pairShare(entries), () =>
      unorderedPairs(entries).map(([[nameM, m], [nameN, other]]) => {
        const rows = presentRows(bothPresent(m.present, other.present), n);
        if (rows.kind === 'none') return [pairKey(nameM, nameN), graphZero(m.p1!, m.p2!, other.p1!, other.p2!)];
        const ab = invarianceTerm(takeRows(m.p1!, rows), takeRows(other.p2!, rows), weights.invarianceDistance);
        const ba = invarianceTerm(takeRows(m.p2!, rows), takeRows(other.p1!, rows), weights.invarianceDistance);
        return [pairKey(nameM, nameN), ab.add(ba).div(2)];
      }),
    );
    for (const [term, weight, spreadTerm] of [
      ['variance', varianceWeight, varianceTerm],
      ['covariance', covarianceWeight, covarianceTerm],
    ] as const) {
      terms.add(term, weight, () =>
        entries.map(([name, m]) => {
          const rows = presentRows(m.present, n);
          // A spread needs two rows: with fewer, the term has no rows to measure.
          if (rowCount(rows, n) < 2) return [name, graphZero(m.p1!, m.p2!)];
          const [view1, view2] = [spreadTerm(takeRows(m.p1!, rows)), spreadTerm(takeRows(m.p2!, rows))];
          return [name, view1.add(view2).div(2)];
        }),
      );
    }
    const loss: AlignmentLoss = { total: terms.total(entries[0]![1].q1), ...terms.values };
    if (infoNceWeight > 0) loss.logitScale = noGrad(() => logitScale!.forward());
    return loss;
  });
}

/**
 * The loss and its weighted terms as plain numbers for a log line: 'total', then '<logName>/<key>'
 * for each value of each term present (ALIGNMENT_TERMS: 'intra/<m>', 'cross/<m>-><n>',
 * 'infonce/<m><-><n>', 'variance/<m>', 'covariance/<m>', 'invariance/<m><-><n>'), and 'logitScale'
 * with InfoNCE. A term whose weight is 0 has no keys. Reads each value back from the device once.
 *
 * @example
 * console.log(JSON.stringify({ step, ...lossNumbers(loss) }));
 */
export function lossNumbers(loss: AlignmentLoss): Record<string, number> {
  const out: Record<string, number> = { total: loss.total.item() };
  for (const [term, { logName }] of Object.entries(ALIGNMENT_TERMS) as [AlignmentTerm, (typeof ALIGNMENT_TERMS)[AlignmentTerm]][]) {
    for (const [key, value] of Object.entries(loss[term] ?? {})) out[`${logName}/${key}`] = value.item();
  }
  if (loss.logitScale) out.logitScale = loss.logitScale.item();
  return out;
}
