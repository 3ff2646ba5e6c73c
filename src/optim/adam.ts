// Adam (Kingma & Ba 2015, arXiv:1412.6980, Algorithm 1) with weight decay as torch.optim.Adam
// applies it: an L2 term added to the gradient, so it passes through the adaptive scaling. AdamW
// (adamw.ts) shares this update with the decay decoupled instead.
import { zerosLike, type Tensor } from '../engine/index.js';
import { Optimizer, checkBoolean, checkRange, type ParamGroup, type ParamGroupInput } from './optimizer.js';
import * as foreach from './foreach.js';

export interface AdamHyperparameters {
  lr: number;
  /** Decay rates (β1, β2) of the first and second moment estimates. */
  betas: [number, number];
  /** Added to √v̂ for numerical stability. */
  eps: number;
  weightDecay: number;
  /** Normalise by the running maximum of v (Reddi et al. 2018, AMSGrad). */
  amsgrad: boolean;
}

export interface AdamState {
  [name: string]: Tensor | number | undefined;
  step: number;
  expAvg: Tensor;
  expAvgSq: Tensor;
  maxExpAvgSq?: Tensor;
}

/** PyTorch's defaults (those of the Adam paper, with lr 1e-3). */
export function adamDefaults(): AdamHyperparameters {
  return { lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0, amsgrad: false };
}

export function checkAdamHyperparameters(h: AdamHyperparameters, where: string): void {
  checkRange(where, 'lr', h.lr, 0);
  if (!Array.isArray(h.betas) || h.betas.length !== 2)
    throw new TypeError(`${where}: betas must be [beta1, beta2], got ${String(h.betas)}`);
  checkRange(where, 'betas[0]', h.betas[0], 0, 1, true);
  checkRange(where, 'betas[1]', h.betas[1], 0, 1, true);
  checkRange(where, 'eps', h.eps, 0);
  checkRange(where, 'weightDecay', h.weightDecay, 0);
  checkBoolean(where, 'amsgrad', h.amsgrad);
}

export function initAdamState(param: Tensor, group: AdamHyperparameters): AdamState {
  const state: AdamState = { step: 0, expAvg: zerosLike(param), expAvgSq: zerosLike(param) };
  if (group.amsgrad) state.maxExpAvgSq = zerosLike(param);
  return state;
}

/**
 * One Adam update of a group. With `decoupled` the decay shrinks the weights directly,
 * w ← w·(1 − lr·λ) (Loshchilov & Hutter 2019, Algorithm 2, with the decay scaled by lr as
 * PyTorch's AdamW does); otherwise it is added to the gradient (λw).
 */
export function adamUpdate(group: AdamHyperparameters, params: Tensor[], grads: Tensor[], states: AdamState[], decoupled: boolean): void {
  const { lr, eps, weightDecay, amsgrad } = group;
  const [beta1, beta2] = group.betas;
  for (const s of states) s.step += 1;
  if (weightDecay !== 0) {
    if (decoupled) foreach.mulScalar_(params, 1 - lr * weightDecay);
    else grads = foreach.add(grads, params, weightDecay);
  }
  const expAvgs = states.map((s) => s.expAvg);
  const expAvgSqs = states.map((s) => s.expAvgSq);
  // m ← β1·m + (1−β1)·g;  v ← β2·v + (1−β2)·g²
  foreach.mulScalar_(expAvgs, beta1);
  foreach.add_(expAvgs, grads, 1 - beta1);
  foreach.mulScalar_(expAvgSqs, beta2);
  foreach.addcmul_(expAvgSqs, grads, grads, 1 - beta2);
  let second = expAvgSqs;
  if (amsgrad) {
    // A state loaded from a run without AMSGrad starts its maximum at v.
    states.forEach((s, i) => (s.maxExpAvgSq ??= expAvgSqs[i]!.clone().keep()));
    second = states.map((s) => s.maxExpAvgSq!);
    foreach.maximum_(second, expAvgSqs);
  }
  // The bias corrections depend on each parameter's own step count, which differs where a
  // parameter had no gradient on some steps; parameters sharing a count are updated together.
  const byStep = new Map<number, number[]>();
  states.forEach((s, i) => byStep.set(s.step, [...(byStep.get(s.step) ?? []), i]));
  for (const [step, idx] of byStep) {
    const biasCorrection1 = 1 - beta1 ** step;
    const biasCorrection2 = 1 - beta2 ** step;
    // w ← w − (lr / (1−β1^t)) · m / (√v / √(1−β2^t) + ε)
    const denom = foreach.sqrt(idx.map((i) => second[i]!));
    foreach.divScalar_(denom, Math.sqrt(biasCorrection2));
    foreach.addScalar_(denom, eps);
    foreach.addcdiv_(
      idx.map((i) => params[i]!),
      idx.map((i) => expAvgs[i]!),
      denom,
      -lr / biasCorrection1,
    );
  }
}

/**
 * Adam as torch.optim.Adam, weight decay as an L2 term in the gradient.
 *
 * @example
 * const opt = new Adam(model.parameters(), { lr: 3e-4 });
 */
export class Adam extends Optimizer<AdamHyperparameters, AdamState> {
  override get name(): string {
    return 'Adam';
  }

  constructor(params: Tensor[] | ParamGroupInput<AdamHyperparameters>[], options: Partial<AdamHyperparameters> = {}) {
    super(params, { ...adamDefaults(), ...options });
  }

  protected checkHyperparameters(h: AdamHyperparameters, where: string): void {
    checkAdamHyperparameters(h, where);
  }

  protected initState(param: Tensor, group: ParamGroup<AdamHyperparameters>): AdamState {
    return initAdamState(param, group);
  }

  protected updateGroup(group: ParamGroup<AdamHyperparameters>, params: Tensor[], grads: Tensor[], states: AdamState[]): void {
    adamUpdate(group, params, grads, states, false);
  }
}
