// VICReg's variance and covariance terms (Bardes, Ponce and LeCun 2022, arXiv:2105.04906, §3.1),
// used here as a safeguard against collapse that needs no negative pairs, and its invariance term.
// For a batch Z of n embeddings of width d (one modality, one view):
//
//   v(Z) = (1/d) Σ_j max(0, γ − √(Var(z_j) + ε))        γ = 1, ε = 1e-4 (the paper's values)
//   c(Z) = (1/d) Σ_{i≠j} C(Z)_ij²,   C(Z) = (1/(n−1)) Σ_k (z_k − z̄)(z_k − z̄)ᵀ
//
// v keeps every dimension's spread across the batch from shrinking to 0 (complete collapse); c
// decorrelates the dimensions (dimensional collapse). Neither compares an item with another item's
// partner, so the objective stays free of negatives, but both use batch statistics, as BatchNorm
// in BYOL's heads already does. They act on the online projections, before the l2 normalisation of
// the BYOL loss, as VICReg applies them to its expander's output. VICReg's invariance term
//
//   s(Z, Z′) = (1/(n d)) Σ_k ‖z_k − z′_k‖²              (F.mse_loss, as the paper's code)
//
// pulls the embeddings of one item's two sides together with gradient into both, with no
// predictor and no stop-gradient: unlike BYOL's cross term, both modalities move towards each other.
// Its 'cosine' distance, 2 − 2·cos(z_k, z′_k) averaged over rows (BYOL's regression loss on the
// two projections, still with gradient into both), ignores their lengths. That matters where one
// side is a locked space (model.freezeHeads): its projections keep the small, uneven norms BYOL
// left them, and a squared difference to them is least when a new tower predicts their mean. In a
// PyTorch study (docs/audio.md) a spoken-caption tower regressing its transcripts' locked
// projections learned nothing in 6 epochs with the squared difference and reached 7.9× chance
// with the cosine.
import type { Tensor } from '../engine/index.js';
import { cosineDistance } from '../byol/loss.js';

/** How the invariance term measures an item's two projections: VICReg's squared difference, or 2 − 2·cos. */
export type InvarianceDistance = 'mse' | 'cosine';

/** The paper's target standard deviation γ and the ε inside the square root. */
export const VICREG_GAMMA = 1;
export const VICREG_EPS = 1e-4;

/** v(Z): mean over dimensions of the hinge max(0, γ − std). z: [n, d], n ≥ 2. */
export function varianceTerm(z: Tensor, gamma = VICREG_GAMMA, eps = VICREG_EPS): Tensor {
  checkBatch(z, 'varianceTerm');
  return z.var(0, { correction: 1 }).add(eps).sqrt().rsub(gamma).relu().mean();
}

/** c(Z): the squared off-diagonal entries of the covariance matrix, summed and divided by d. z: [n, d], n ≥ 2. */
export function covarianceTerm(z: Tensor): Tensor {
  checkBatch(z, 'covarianceTerm');
  const [n, d] = z.shape as [number, number];
  const centred = z.sub(z.mean(0, true));
  const cov = centred
    .transpose(0, 1)
    .mm(centred)
    .div(n - 1);
  // Σ_{i≠j} C_ij² = Σ_ij C_ij² − Σ_j C_jj², and the diagonal is each dimension's variance.
  const diagonal = centred
    .square()
    .sum(0)
    .div(n - 1);
  return cov.square().sum().sub(diagonal.square().sum()).div(d);
}

/**
 * s(Z, Z′): mean squared difference over rows and dimensions ('mse'), or the mean over rows of
 * 2 − 2·cos(z_k, z′_k) ('cosine'). a, b: [n, d], the same shape; both get gradient.
 */
export function invarianceTerm(a: Tensor, b: Tensor, distance: InvarianceDistance = 'mse'): Tensor {
  const [sa, sb] = [a.shape, b.shape];
  if (sa.length !== 2 || sa.length !== sb.length || sa[0] !== sb[0] || sa[1] !== sb[1]) {
    throw new RangeError(`invarianceTerm: needs two [n, d] batches of one shape, got [${sa.join(', ')}] and [${sb.join(', ')}]`);
  }
  if (distance === 'cosine') return cosineDistance(a, b);
  if (distance !== 'mse') throw new RangeError(`invarianceTerm: distance must be 'mse' or 'cosine', got ${String(distance)}`);
  return a.sub(b).square().mean();
}

function checkBatch(z: Tensor, where: string): void {
  const shape = z.shape;
  if (shape.length !== 2 || shape[0]! < 2) {
    throw new RangeError(`${where}: needs a batch [n, d] with n ≥ 2 to measure spread, got [${shape.join(', ')}]`);
  }
}
