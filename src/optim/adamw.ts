// AdamW (Loshchilov & Hutter 2019, arXiv:1711.05101): Adam with the weight decay decoupled from
// the adaptive gradient step, as torch.optim.AdamW.
import type { Tensor } from '../engine/index.js';
import { Optimizer, type ParamGroup, type ParamGroupInput } from './optimizer.js';
import { adamDefaults, adamUpdate, checkAdamHyperparameters, initAdamState, type AdamHyperparameters, type AdamState } from './adam.js';

/**
 * AdamW: w ← w·(1 − lr·λ), then the Adam step. Default weight decay 0.01, as PyTorch.
 *
 * @example
 * const opt = new AdamW([{ params: decay }, { params: noDecay, weightDecay: 0 }], { lr: 1e-3, weightDecay: 0.05 });
 */
export class AdamW extends Optimizer<AdamHyperparameters, AdamState> {
  override get name(): string {
    return 'AdamW';
  }

  constructor(params: Tensor[] | ParamGroupInput<AdamHyperparameters>[], options: Partial<AdamHyperparameters> = {}) {
    super(params, { ...adamDefaults(), weightDecay: 1e-2, ...options });
  }

  protected checkHyperparameters(h: AdamHyperparameters, where: string): void {
    checkAdamHyperparameters(h, where);
  }

  protected initState(param: Tensor, group: ParamGroup<AdamHyperparameters>): AdamState {
    return initAdamState(param, group);
  }

  protected updateGroup(group: ParamGroup<AdamHyperparameters>, params: Tensor[], grads: Tensor[], states: AdamState[]): void {
    adamUpdate(group, params, grads, states, true);
  }
}
