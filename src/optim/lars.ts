// LARS (You, Gitman & Ginsburg 2017, arXiv:1708.03888) as BYOL trains with it (Grill et al. 2020,
// arXiv:2006.07733, §3.2 and Appendix C): "LARS optimizer … with a trust coefficient η = 10⁻³,
// momentum 0.9 and weight decay 1.5·10⁻⁶ … we exclude the biases and batch normalization
// parameters from both LARS adaptation and weight decay." The update follows BYOL's released
// optimizer (byol/utils/optimizers.py), which solo-learn and lightly port to PyTorch:
//   u ← g + λw                      (weight decay, per group)
//   u ← η‖w‖/‖u‖ · u                (trust ratio; 1 when ‖w‖ or ‖u‖ is 0; per group)
//   b ← μb + u;  w ← w − lr·b       (heavy-ball momentum, lr applied outside the buffer)
// solo-learn and lightly divide by ‖g‖ + λ‖w‖ + ε instead of ‖g + λw‖ (an upper bound, equal when
// g and w are parallel); we keep BYOL's own form.
import { stack, where, onesLike, type Tensor } from '../engine/index.js';
import { Optimizer, checkBoolean, checkRange, type ParamGroup, type ParamGroupInput } from './optimizer.js';
import { momentumStep, type SGDState } from './sgd.js';
import * as foreach from './foreach.js';

export interface LARSHyperparameters {
  lr: number;
  momentum: number;
  weightDecay: number;
  /** Trust coefficient η. */
  eta: number;
  /** Skip the trust ratio for this group (BYOL's biases and normalisation parameters). */
  excludeFromAdaptation: boolean;
}

export type LARSState = SGDState;

/** BYOL's LARS settings (Grill et al. 2020, §3.2); lr comes from the schedule. */
export const byolLarsDefaults = { momentum: 0.9, weightDecay: 1.5e-6, eta: 1e-3, excludeFromAdaptation: false } as const;

/**
 * LARS with BYOL's defaults (momentum 0.9, weight decay 1.5e-6, η = 0.001). Give the biases and
 * normalisation parameters their own group with `weightDecay: 0, excludeFromAdaptation: true`,
 * which larsParamGroups() builds from a module.
 *
 * @example
 * const opt = new LARS(larsParamGroups(model), { lr: scaleLr(0.2, 4096) });
 */
export class LARS extends Optimizer<LARSHyperparameters, LARSState> {
  override get name(): string {
    return 'LARS';
  }

  constructor(params: Tensor[] | ParamGroupInput<LARSHyperparameters>[], options: Partial<LARSHyperparameters> & { lr: number }) {
    super(params, { ...byolLarsDefaults, ...options });
  }

  protected checkHyperparameters(h: LARSHyperparameters, where: string): void {
    checkRange(where, 'lr', h.lr, 0);
    checkRange(where, 'momentum', h.momentum, 0);
    checkRange(where, 'weightDecay', h.weightDecay, 0);
    checkRange(where, 'eta', h.eta, 0);
    checkBoolean(where, 'excludeFromAdaptation', h.excludeFromAdaptation);
  }

  protected initState(): LARSState {
    return {};
  }

  protected updateGroup(group: ParamGroup<LARSHyperparameters>, params: Tensor[], grads: Tensor[], states: LARSState[]): void {
    const { lr, momentum, weightDecay, eta, excludeFromAdaptation } = group;
    let update = weightDecay !== 0 ? foreach.add(grads, params, weightDecay) : grads;
    if (!excludeFromAdaptation) {
      // All trust ratios as one vector, computed on the device: no per-parameter host sync.
      const weightNorm = stack(foreach.norm(params));
      const updateNorm = stack(foreach.norm(update));
      const ratio = weightNorm.mul(eta).div(updateNorm);
      const trust = where(weightNorm.gt(0).logicalAnd(updateNorm.gt(0)), ratio, onesLike(ratio));
      update = foreach.mul(
        update,
        params.map((_, i) => trust.select(0, i)),
      );
    }
    const direction = momentum !== 0 ? momentumStep(states, update, momentum, 0) : update;
    foreach.add_(params, direction, -lr);
  }
}
