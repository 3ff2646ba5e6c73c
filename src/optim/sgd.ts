// Stochastic gradient descent with momentum, dampening, Nesterov momentum and L2 weight decay,
// matching torch.optim.SGD update for update (Sutskever et al. 2013 for the Nesterov form).
import type { Tensor } from '../engine/index.js';
import { Optimizer, checkBoolean, checkRange, type ParamGroup, type ParamGroupInput } from './optimizer.js';
import * as foreach from './foreach.js';

export interface SGDHyperparameters {
  lr: number;
  /** Momentum factor μ (0: plain SGD). */
  momentum: number;
  /** Dampening of the gradient's share in the momentum buffer: b ← μb + (1 − dampening)g. */
  dampening: number;
  /** Nesterov momentum: step along g + μb instead of b. */
  nesterov: boolean;
  /** L2 penalty: g ← g + weightDecay·w. */
  weightDecay: number;
}

export interface SGDState {
  [name: string]: Tensor | number | undefined;
  momentumBuffer?: Tensor;
}

/**
 * SGD as torch.optim.SGD: g ← ∇ + λw; b ← μb + (1−d)g (b = g at the first step);
 * w ← w − lr·(nesterov ? g + μb : b).
 *
 * @example
 * const opt = new SGD(model.parameters(), { lr: 0.1, momentum: 0.9, weightDecay: 1e-4 });
 */
export class SGD extends Optimizer<SGDHyperparameters, SGDState> {
  override get name(): string {
    return 'SGD';
  }

  constructor(params: Tensor[] | ParamGroupInput<SGDHyperparameters>[], options: Partial<SGDHyperparameters> & { lr: number }) {
    super(params, { momentum: 0, dampening: 0, nesterov: false, weightDecay: 0, ...options });
  }

  protected checkHyperparameters(h: SGDHyperparameters, where: string): void {
    checkRange(where, 'lr', h.lr, 0);
    checkRange(where, 'momentum', h.momentum, 0);
    checkRange(where, 'dampening', h.dampening, 0, 1);
    checkRange(where, 'weightDecay', h.weightDecay, 0);
    checkBoolean(where, 'nesterov', h.nesterov);
    if (h.nesterov && (h.momentum <= 0 || h.dampening !== 0)) {
      throw new RangeError(`${where}: nesterov needs momentum > 0 and dampening 0 (got momentum ${h.momentum}, dampening ${h.dampening})`);
    }
  }

  protected initState(): SGDState {
    return {};
  }

  protected updateGroup(group: ParamGroup<SGDHyperparameters>, params: Tensor[], grads: Tensor[], states: SGDState[]): void {
    const { lr, momentum, dampening, nesterov, weightDecay } = group;
    let direction = weightDecay !== 0 ? foreach.add(grads, params, weightDecay) : grads;
    if (momentum !== 0) {
      const buffers = momentumStep(states, direction, momentum, dampening);
      direction = nesterov ? foreach.add(direction, buffers, momentum) : buffers;
    }
    foreach.add_(params, direction, -lr);
  }
}

/**
 * b ← μb + (1 − dampening)·d for parameters that have a buffer; a new buffer starts as a copy of d
 * (PyTorch's convention, so the first step is not dampened). Returns the buffers, in order.
 * Shared with LARS, whose momentum is the same heavy-ball form.
 */
export function momentumStep(states: { momentumBuffer?: Tensor }[], direction: Tensor[], momentum: number, dampening: number): Tensor[] {
  const old: number[] = [];
  states.forEach((s, i) => {
    if (s.momentumBuffer === undefined) s.momentumBuffer = direction[i]!.clone().keep();
    else old.push(i);
  });
  if (old.length > 0) {
    const buffers = old.map((i) => states[i]!.momentumBuffer!);
    foreach.mulScalar_(buffers, momentum);
    foreach.add_(
      buffers,
      old.map((i) => direction[i]!),
      1 - dampening,
    );
  }
  return states.map((s) => s.momentumBuffer!);
}
