// Gradient clipping by the global norm, as torch.nn.utils.clip_grad_norm_: the norm of all
// gradients taken as one vector, and every gradient scaled by min(1, maxNorm / (norm + 1e-6)).
// The scale is applied unconditionally, as a tensor, so no device-to-host sync is needed.
import { keep, noGrad, scalar, stack, tidy, type Tensor } from '../engine/index.js';
import * as foreach from './foreach.js';

/**
 * Scales the parameters' gradients in place so their global `normType`-norm is at most maxNorm;
 * parameters without a gradient are skipped. Returns the norm before clipping (a 0-d tensor).
 *
 * @example
 * loss.backward();
 * const norm = clipGradNorm(model.parameters(), 1.0).item();
 * opt.step();
 */
export function clipGradNorm(parameters: Iterable<Tensor>, maxNorm: number, normType = 2): Tensor {
  if (!(maxNorm >= 0)) throw new RangeError(`clipGradNorm: maxNorm must be a number ≥ 0, got ${maxNorm}`);
  if (!(normType > 0)) throw new RangeError(`clipGradNorm: normType must be > 0 (Infinity for the largest magnitude), got ${normType}`);
  return noGrad(() =>
    tidy(() => {
      const grads: Tensor[] = [];
      for (const p of parameters) {
        const g = p.grad;
        if (g !== null) grads.push(g);
      }
      if (grads.length === 0) return keep(scalar(0));
      const norms = stack(foreach.norm(grads, normType));
      const total = normType === Infinity ? norms.max() : norms.norm(normType);
      const scale = total.add(1e-6).reciprocal().mul(maxNorm).clamp(null, 1);
      foreach.mul_(
        grads,
        grads.map(() => scale),
      );
      return total;
    }),
  );
}
