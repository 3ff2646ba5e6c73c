// BYOL's regression loss (Grill et al. 2020, arXiv:2006.07733, eq. 2): the normalised online
// prediction q̄ regresses the normalised target projection z̄′, ‖q̄ − z̄′‖² = 2 − 2·cos(q, z′),
// with a stop-gradient on the target; symmetrised over the two views (eq. 3: L + L̃).
import { F, type Tensor } from '../engine/index.js';

/**
 * Mean over the batch of 2 − 2·cos(prediction, target), the target detached.
 *
 * @example
 * regressionLoss(q, z).item(); // 0 when q ∥ z, 4 when q = −z
 */
export function regressionLoss(prediction: Tensor, target: Tensor): Tensor {
  return cosineDistance(prediction, target.detach());
}

/** Mean over rows of 2 − 2·cos(a_k, b_k), with gradient into both (VICReg's invariance term measured as a cosine uses it). */
export function cosineDistance(a: Tensor, b: Tensor): Tensor {
  return F.normalize(a, 1).mul(F.normalize(b, 1)).sum(1).mul(-2).add(2).mean();
}

/** L_sym = ℓ(q₁, z′₂) + ℓ(q₂, z′₁): each view's prediction regresses the other view's target. */
export function symmetricByolLoss(q1: Tensor, q2: Tensor, z1Target: Tensor, z2Target: Tensor): Tensor {
  return regressionLoss(q1, z2Target).add(regressionLoss(q2, z1Target));
}
