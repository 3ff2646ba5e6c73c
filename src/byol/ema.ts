// The target network's exponential moving average (Grill et al. 2020, arXiv:2006.07733, §3.1):
// ξ ← τξ + (1 − τ)θ after every step, with τ rising from τ_base to 1 on a cosine (eq. in §3.2):
// τ_k = 1 − (1 − τ_base)·(cos(πk/K) + 1)/2.
import { noGrad, op, type Tensor } from '../engine/index.js';
import type { Module } from '../nn/module.js';

const foreachMul = op('aten::_foreach_mul_', 'Scalar');
const foreachAdd = op('aten::_foreach_add_', 'List');

/**
 * The EMA decay at step k of K.
 *
 * @example
 * tauAt(0, 1000, 0.996);    // 0.996
 * tauAt(1000, 1000, 0.996); // 1
 */
export function tauAt(step: number, totalSteps: number, tauBase: number): number {
  if (totalSteps <= 0) return tauBase;
  const progress = Math.min(Math.max(step / totalSteps, 0), 1);
  return 1 - ((1 - tauBase) * (Math.cos(Math.PI * progress) + 1)) / 2;
}

/** Floating-point tensors move by EMA; integer ones (BatchNorm's num_batches_tracked) are copied. */
function splitByKind(pairs: [Tensor, Tensor][]): { floating: [Tensor[], Tensor[]]; counters: [Tensor, Tensor][] } {
  const targets: Tensor[] = [];
  const sources: Tensor[] = [];
  const counters: [Tensor, Tensor][] = [];
  for (const [target, source] of pairs) {
    if (target.dtype === 'float32' || target.dtype === 'float64' || target.dtype === 'float16') {
      targets.push(target);
      sources.push(source);
    } else {
      counters.push([target, source]);
    }
  }
  return { floating: [targets, sources], counters };
}

/**
 * ξ ← τξ + (1 − τ)θ for every parameter AND buffer of `target`, matched by name with `online`.
 * Carrying BatchNorm's running statistics too keeps the target's eval-mode behaviour in step with
 * its weights (lucidrains/byol-pytorch leaves them at their initial values, its issue #73).
 * Two libtorch calls for the whole network.
 */
export function emaUpdate(target: Module, online: Module, tau: number): void {
  const onlineState = online.stateDict();
  const pairs: [Tensor, Tensor][] = [];
  for (const [name, t] of target.stateDict()) {
    const source = onlineState.get(name);
    if (!source) throw new Error(`emaUpdate: the online network has no '${name}'; target and online must have the same structure`);
    pairs.push([t, source]);
  }
  const { floating, counters } = splitByKind(pairs);
  noGrad(() => {
    if (floating[0].length > 0) {
      foreachMul.inPlace(floating[0], tau);
      foreachAdd.inPlace(floating[0], floating[1], 1 - tau);
    }
    for (const [t, s] of counters) t.copy_(s);
  });
}

/** Copies every parameter and buffer (the target's initialisation: ξ = θ). */
export function copyState(target: Module, online: Module): void {
  emaUpdate(target, online, 0);
}
