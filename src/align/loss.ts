// The heterogeneous BYOL objective. Each modality m has online predictions q^m_v and target
// projections z^m_v of its two views v ∈ {1, 2} and a presence mask (an item may lack a modality).
// With BYOL's regression loss ℓ(q, z) = ‖q̄ − z̄‖² = 2 − 2·cos(q, z) (src/byol/loss.ts):
//
//   L = λ_intra · Σ_m       mean_{i: m present}      [ℓ(q^m_1, z^m_2) + ℓ(q^m_2, z^m_1)]
//     + λ_cross · Σ_{m ≠ n} mean_{i: m, n present}   [ℓ(q^m_1, z^n_2) + ℓ(q^m_2, z^n_1)]
//
// The intra term is BYOL itself per modality (Grill et al. 2020, arXiv:2006.07733, eq. 2–3); in the
// cross term one modality's prediction regresses the other's target projection of the same item, and
// both ordered pairs (m, n) and (n, m) appear, so it is symmetric. With one modality and λ_cross = 0,
// L is exactly symmetricByolLoss. alignmentLoss() adds CLIP's InfoNCE (infonce.ts) with a third
// weight and, optionally, VICReg's variance, covariance and invariance terms on the online projections
// (vicreg.ts), so every objective of the study is one AlignmentLossWeights value.
import { noGrad, tidy, type Tensor } from '../engine/index.js';
import { symmetricByolLoss } from '../byol/loss.js';
import { symmetricInfoNce, type LogitScale } from './infonce.js';
import { bothPresent, checkMask, graphZero, presentRows, takeRows } from './rows.js';
import { covarianceTerm, invarianceTerm, varianceTerm } from './vicreg.js';

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
 * The weights of the three terms. Every objective of the study is one value of this type; see
 * {@link ALIGNMENT_OBJECTIVES}.
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
}

/** The named objectives compared in the study. */
export const ALIGNMENT_OBJECTIVES = {
  /** Heterogeneous BYOL: intra- and cross-modal terms. */
  byol: { intraWeight: 1, crossWeight: 1, infoNceWeight: 0 },
  /** Independent BYOL per modality (no alignment signal at all: the lower bound). */
  intraOnly: { intraWeight: 1, crossWeight: 0, infoNceWeight: 0 },
  /** Only the cross-modal regression. */
  crossOnly: { intraWeight: 0, crossWeight: 1, infoNceWeight: 0 },
  /** CLIP's contrastive objective alone (the baseline). */
  infoNce: { intraWeight: 0, crossWeight: 0, infoNceWeight: 1 },
  /** Heterogeneous BYOL plus InfoNCE. */
  byolInfoNce: { intraWeight: 1, crossWeight: 1, infoNceWeight: 1 },
  /**
   * Heterogeneous BYOL with VICReg's variance and covariance safeguards (no negatives). The weights
   * keep VICReg's ratio invariance : variance : covariance = 25 : 25 : 1.
   */
  byolVicReg: { intraWeight: 1, crossWeight: 1, infoNceWeight: 0, varianceWeight: 1, covarianceWeight: 0.04 },
  /** Only the cross-modal regression, with VICReg's variance and covariance safeguards. */
  crossVicReg: { intraWeight: 0, crossWeight: 1, infoNceWeight: 0, varianceWeight: 1, covarianceWeight: 0.04 },
  /** VICReg itself across modalities (invariance : variance : covariance = 25 : 25 : 1): negative-free, not BYOL. */
  vicReg: { intraWeight: 0, crossWeight: 0, infoNceWeight: 0, invarianceWeight: 1, varianceWeight: 1, covarianceWeight: 0.04 },
  /** BYOL's cross term plus all three VICReg terms: the cross-modal regression with VICReg's alignment beside it. */
  crossPlusVicReg: { intraWeight: 0, crossWeight: 1, infoNceWeight: 0, invarianceWeight: 1, varianceWeight: 1, covarianceWeight: 0.04 },
  /**
   * crossPlusVicReg with the cross term at 0.25: the best negative-free BYOL-based configuration
   * measured on the icon data set (with τ_base 0.996; docs/align.md). VICReg's invariance term does
   * most of the aligning; BYOL's cross term adds the online-prediction/target pairing beside it.
   */
  lightCrossPlusVicReg: {
    intraWeight: 0,
    crossWeight: 0.25,
    infoNceWeight: 0,
    invarianceWeight: 1,
    varianceWeight: 1,
    covarianceWeight: 0.04,
  },
} as const satisfies Record<string, AlignmentLossWeights>;

export interface HeterogeneousByolLoss {
  /** λ_intra Σ intra + λ_cross Σ cross, with gradient. */
  total: Tensor;
  /** Each modality's intra term (before λ_intra), detached, by modality name. */
  intra: Record<string, Tensor>;
  /** Each ordered pair's cross term (before λ_cross), detached, by crossKey(m, n) = 'm->n'. */
  cross: Record<string, Tensor>;
}

export interface AlignmentLoss extends HeterogeneousByolLoss {
  /** Each unordered pair's InfoNCE (before its weight), detached, by pairKey(m, n) = 'm<->n'; empty when not computed. */
  infoNce: Record<string, Tensor>;
  /** The InfoNCE logit scale used (detached), or null when InfoNCE was not computed. */
  logitScale: Tensor | null;
  /** Each modality's VICReg variance term (mean of its two views, before the weight), detached; empty when its weight is 0. */
  variance: Record<string, Tensor>;
  /** Each modality's VICReg covariance term, likewise. */
  covariance: Record<string, Tensor>;
  /** Each unordered pair's VICReg invariance term (mean of its two view pairings, before the weight), detached, by pairKey; empty when its weight is 0. */
  invariance: Record<string, Tensor>;
}

/** The key of the ordered pair (m, n) in HeterogeneousByolLoss.cross: q^m regresses z^n. */
export function crossKey(m: string, n: string): string {
  return `${m}->${n}`;
}

/** The key of the unordered pair {m, n} in AlignmentLoss.infoNce. */
export function pairKey(m: string, n: string): string {
  return `${m}<->${n}`;
}

function entriesOf<T>(values: PerModality<T>): [string, T][] {
  return values instanceof Map ? [...values.entries()] : Object.entries(values as Record<string, T>);
}

/** Every unordered pair {m, n} of the entries, each once, in the entries' order. */
function* unorderedPairs<T>(entries: [string, T][]): Generator<[[string, T], [string, T]]> {
  for (let i = 0; i < entries.length; i++) for (let j = i + 1; j < entries.length; j++) yield [entries[i]!, entries[j]!];
}

function checkWeight(weights: Partial<AlignmentLossWeights>, key: keyof AlignmentLossWeights, where: string, optional = false): number {
  const w = optional ? (weights[key] ?? 0) : weights[key];
  if (typeof w !== 'number' || !(w >= 0) || !Number.isFinite(w))
    throw new RangeError(`${where}: ${key} must be a finite number ≥ 0, got ${w}`);
  return w;
}

/** Checks that every modality's q1, q2, z1, z2 share one [N, d] shape, N common to all; returns N. */
function checkInputs(entries: [string, ByolTermInputs][], where: string): number {
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

/**
 * mean over the rows in `mask` of ℓ(qa1, zb2) + ℓ(qa2, zb1): symmetricByolLoss on those rows, or
 * 0 (in the graph) when there are none.
 */
function maskedSymmetricByol(a: ByolTermInputs, b: ByolTermInputs, mask: Tensor | undefined, n: number): Tensor {
  const rows = presentRows(mask, n);
  if (rows.kind === 'none') return graphZero(a.q1).add(graphZero(a.q2));
  return symmetricByolLoss(takeRows(a.q1, rows), takeRows(a.q2, rows), takeRows(b.z1, rows), takeRows(b.z2, rows));
}

/** Sum of the terms times the weight; a weight of 0 leaves them out (they were computed for logging only). */
function weightedSum(terms: Tensor[], weight: number): Tensor | null {
  if (weight === 0 || terms.length === 0) return null;
  return terms.reduce((sum, t) => sum.add(t)).mul(weight);
}

/**
 * The heterogeneous BYOL loss (see the top of this file). Terms whose weight is 0 are still
 * computed, without gradient, so their values can be logged.
 *
 * @example
 * const outputs = model.forwardViews(views, batchSize); // Map<modality, {q1, q2, z1, z2, present}>
 * const { total, intra, cross } = heterogeneousByolLoss(outputs, { intraWeight: 1, crossWeight: 1 });
 * total.backward();
 * intra.image.item(); cross['image->text'].item();
 */
export function heterogeneousByolLoss(
  outputs: PerModality<ByolTermInputs>,
  weights: Pick<AlignmentLossWeights, 'intraWeight' | 'crossWeight'> = ALIGNMENT_OBJECTIVES.byol,
): HeterogeneousByolLoss {
  const where = 'heterogeneousByolLoss';
  const intraWeight = checkWeight(weights, 'intraWeight', where);
  const crossWeight = checkWeight(weights, 'crossWeight', where);
  const entries = entriesOf(outputs);
  const n = checkInputs(entries, where);
  if (entries.length > 1) {
    const d = entries[0]![1].q1.shape[1];
    const other = entries.find(([, o]) => o.q1.shape[1] !== d);
    if (other) {
      throw new RangeError(
        `${where}: the cross term compares ${entries[0]![0]} and ${other[0]}, but their widths differ ` +
          `(${d} and ${other[1].q1.shape[1]}); project every modality to one projectionDim`,
      );
    }
  }
  return tidy(() => {
    const withGrad = <T>(weight: number, fn: () => T): T => (weight === 0 ? noGrad(fn) : fn());
    const intraTerms: Tensor[] = [];
    const crossTerms: Tensor[] = [];
    const intra: Record<string, Tensor> = {};
    const cross: Record<string, Tensor> = {};
    for (const [name, m] of entries) {
      const term = withGrad(intraWeight, () => maskedSymmetricByol(m, m, m.present, n));
      intraTerms.push(term);
      intra[name] = term.detach();
    }
    for (const [nameM, m] of entries) {
      for (const [nameN, other] of entries) {
        if (nameM === nameN) continue;
        const term = withGrad(crossWeight, () => maskedSymmetricByol(m, other, bothPresent(m.present, other.present), n));
        crossTerms.push(term);
        cross[crossKey(nameM, nameN)] = term.detach();
      }
    }
    const parts = [weightedSum(intraTerms, intraWeight), weightedSum(crossTerms, crossWeight)].filter((t): t is Tensor => t !== null);
    const total = parts.length === 0 ? graphZero(entries[0]![1].q1) : parts.reduce((sum, t) => sum.add(t));
    return { total, intra, cross };
  });
}

/**
 * The combined objective: heterogeneous BYOL (intra and cross terms) plus CLIP's symmetric InfoNCE
 * between every unordered pair of modalities, on the online projections of the rows where both are
 * present. Each pair's InfoNCE averages its two view pairings, ½[I(p^m_1, p^n_2) + I(p^m_2, p^n_1)],
 * mirroring the cross term. InfoNCE is computed when a logit scale is given (without gradient if
 * its weight is 0); a positive infoNceWeight needs one. A positive varianceWeight or
 * covarianceWeight adds VICReg's terms on each modality's online projections of its present rows,
 * averaged over the two views and summed over modalities.
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
  const needsProjections = logitScale !== undefined || varianceWeight > 0 || covarianceWeight > 0 || invarianceWeight > 0;
  if (needsProjections) {
    for (const [name, m] of entries) {
      if (m.p1 === undefined || m.p2 === undefined)
        throw new TypeError(`${where}: InfoNCE and the VICReg terms need ${name}.p1 and ${name}.p2 (online projections)`);
    }
  }
  return tidy(() => {
    const byol = heterogeneousByolLoss(outputs, weights);
    const infoNce: Record<string, Tensor> = {};
    const variance: Record<string, Tensor> = {};
    const covariance: Record<string, Tensor> = {};
    const invariance: Record<string, Tensor> = {};
    const parts: (Tensor | null)[] = [byol.total];
    let scale: Tensor | null = null;
    if (logitScale !== undefined) {
      const terms: Tensor[] = [];
      const compute = (): Tensor => {
        for (const [[nameM, m], [nameN, other]] of unorderedPairs(entries)) {
          const paired = bothPresent(m.present, other.present);
          const term = symmetricInfoNce(m.p1!, other.p2!, logitScale, paired)
            .loss.add(symmetricInfoNce(m.p2!, other.p1!, logitScale, paired).loss)
            .div(2);
          terms.push(term);
          infoNce[pairKey(nameM, nameN)] = term.detach();
        }
        return noGrad(() => logitScale.forward());
      };
      scale = infoNceWeight === 0 ? noGrad(compute) : compute();
      parts.push(weightedSum(terms, infoNceWeight));
    }
    const n = entries[0]![1].q1.shape[0]!;
    if (invarianceWeight > 0) {
      const terms: Tensor[] = [];
      for (const [[nameM, m], [nameN, other]] of unorderedPairs(entries)) {
        const rows = presentRows(bothPresent(m.present, other.present), n);
        if (rows.kind === 'none') continue;
        const term = invarianceTerm(takeRows(m.p1!, rows), takeRows(other.p2!, rows))
          .add(invarianceTerm(takeRows(m.p2!, rows), takeRows(other.p1!, rows)))
          .div(2);
        terms.push(term);
        invariance[pairKey(nameM, nameN)] = term.detach();
      }
      parts.push(weightedSum(terms, invarianceWeight));
    }
    for (const [weight, fn, out] of [
      [varianceWeight, varianceTerm, variance],
      [covarianceWeight, covarianceTerm, covariance],
    ] as const) {
      if (weight === 0) continue;
      const terms: Tensor[] = [];
      for (const [name, m] of entries) {
        const rows = presentRows(m.present, n);
        // Spread is undefined for fewer than two rows; such a modality adds nothing this step.
        const count = rows.kind === 'all' ? n : rows.kind === 'some' ? rows.rows.shape[0]! : 0;
        if (count < 2) continue;
        const term = fn(takeRows(m.p1!, rows))
          .add(fn(takeRows(m.p2!, rows)))
          .div(2);
        terms.push(term);
        out[name] = term.detach();
      }
      parts.push(weightedSum(terms, weight));
    }
    const total = parts.filter((t): t is Tensor => t !== null).reduce((sum, t) => sum.add(t));
    return { ...byol, total, infoNce, logitScale: scale, variance, covariance, invariance };
  });
}

/**
 * The loss and its parts as plain numbers for a log line: 'total', 'intra/<m>', 'cross/<m>-><n>',
 * 'infonce/<m><-><n>', 'variance/<m>', 'covariance/<m>', 'invariance/<m><-><n>' and 'logitScale'. Reads each value back from the device once.
 *
 * @example
 * console.log(JSON.stringify({ step, ...lossNumbers(loss) }));
 */
export function lossNumbers(loss: HeterogeneousByolLoss & Partial<AlignmentLoss>): Record<string, number> {
  const out: Record<string, number> = { total: loss.total.item() };
  for (const [name, t] of Object.entries(loss.intra)) out[`intra/${name}`] = t.item();
  for (const [key, t] of Object.entries(loss.cross)) out[`cross/${key}`] = t.item();
  for (const [key, t] of Object.entries(loss.infoNce ?? {})) out[`infonce/${key}`] = t.item();
  for (const [name, t] of Object.entries(loss.variance ?? {})) out[`variance/${name}`] = t.item();
  for (const [name, t] of Object.entries(loss.covariance ?? {})) out[`covariance/${name}`] = t.item();
  for (const [key, t] of Object.entries(loss.invariance ?? {})) out[`invariance/${key}`] = t.item();
  if (loss.logitScale) out.logitScale = loss.logitScale.item();
  return out;
}
