// The optimizer for a self-supervised network's trainable parameters: LARS as in BYOL (Grill et al.
// 2020, arXiv:2006.07733, §3.3: biases and normalisation parameters excluded from weight decay and
// from the trust ratio), or AdamW/Adam with the same exclusion from weight decay.
import type { Tensor } from '../engine/index.js';
import { Adam, AdamW, LARS, larsParamGroups, splitBiasAndNorm, type GroupHyperparameters, type Optimizer } from '../optim/index.js';

export type OptimizerName = 'lars' | 'adamw' | 'adam';

/**
 * @example
 * const optimizer = makeOptimizer(model.online.namedParameters(), 'adamw', 1e-3, 1e-4);
 */
export function makeOptimizer(
  named: [string, Tensor][],
  name: OptimizerName,
  lr: number,
  weightDecay: number,
): Optimizer<GroupHyperparameters> {
  switch (name) {
    case 'lars':
      return new LARS(larsParamGroups(named), { lr, weightDecay }) as unknown as Optimizer<GroupHyperparameters>;
    case 'adamw':
    case 'adam': {
      const { regular, excluded } = splitBiasAndNorm(named);
      const groups = [{ params: regular }, { params: excluded, weightDecay: 0 }];
      const Cls = name === 'adamw' ? AdamW : Adam;
      return new Cls(groups, { lr, weightDecay }) as unknown as Optimizer<GroupHyperparameters>;
    }
    default:
      throw new Error(`unknown optimizer '${String(name)}' (expected 'lars', 'adamw' or 'adam')`);
  }
}
