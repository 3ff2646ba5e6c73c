// The target network's exponential moving average (Grill et al. 2020, arXiv:2006.07733, §3.1):
// ξ ← τξ + (1 − τ)θ after every step, with τ rising from τ_base to 1 on a cosine (eq. in §3.2):
// τ_k = 1 − (1 − τ_base)·(cos(πk/K) + 1)/2. Both BYOL models (src/byol/model.ts and the aligner's
// src/align/model.ts) make and move their target with makeEmaTarget and updateEmaTarget.
import { noGrad, op, type Tensor } from '../engine/index.js';
import { BatchNorm } from '../nn/batch_norm.js';
import type { Module } from '../nn/module.js';

const foreachMul = op<void>('aten::_foreach_mul_', 'Scalar');
const foreachAdd = op<void>('aten::_foreach_add_', 'List');

/** How τ moves over training; the options of both BYOL models. */
export interface EmaScheduleOptions {
  /** τ_base: 0.996 for long runs (the paper, the default), 0.99 for short ones. */
  tauBase?: number;
  /**
   * 'cosine' (the paper, the default): τ rises from τ_base to 1 over training. 'constant': τ stays
   * at τ_base, as in lucidrains/byol-pytorch; on short runs the target then keeps following the
   * online network.
   */
  tauSchedule?: 'cosine' | 'constant';
}

/** An EMA schedule with its defaults filled in. */
export type EmaSchedule = Required<EmaScheduleOptions>;

/**
 * The schedule `options` describe, with the paper's defaults (τ_base 0.996, cosine).
 *
 * @example
 * emaSchedule({ tauBase: 0.99 }); // { tauBase: 0.99, tauSchedule: 'cosine' }
 */
export function emaSchedule(options: EmaScheduleOptions): EmaSchedule {
  return { tauBase: options.tauBase ?? 0.996, tauSchedule: options.tauSchedule ?? 'cosine' };
}

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
 * ξ ← τξ + (1 − τ)θ for every parameter AND buffer of `target`, matched by name with `online`,
 * but those whose online tensor is in `fixed` (locked: they never change, and their target stays
 * the copy it started as).
 * Carrying BatchNorm's running statistics too keeps the target's eval-mode behaviour in step with
 * its weights (lucidrains/byol-pytorch leaves them at their initial values, its issue #73).
 * Two libtorch calls for the whole network.
 */
export function emaUpdate(target: Module, online: Module, tau: number, fixed: ReadonlySet<Tensor> = new Set()): void {
  const onlineState = online.stateDict();
  const pairs: [Tensor, Tensor][] = [];
  for (const [name, t] of target.stateDict()) {
    const source = onlineState.get(name);
    if (!source) throw new Error(`emaUpdate: the online network has no '${name}'; target and online must have the same structure`);
    // A module both networks hold (a tower frozen whole, src/align/model.ts) is its own average; a
    // locked tensor's target already equals it, and τξ + (1 − τ)ξ would move it by rounding.
    if (t !== source && !fixed.has(source)) pairs.push([t, source]);
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

/**
 * Makes `target` (built with the same structure as `online`) the EMA target of `online`: ξ = θ,
 * no gradient, and BatchNorm momentum 0. The target normalises with its batch's statistics (it
 * runs in training mode, as in the paper) but its running statistics move only by the EMA, so
 * they are not also averaged by its own forward passes.
 *
 * @example
 * this.target = this.registerModule('target', build(false));
 * makeEmaTarget(this.target, this.online);
 */
export function makeEmaTarget(target: Module, online: Module): void {
  copyState(target, online);
  for (const p of target.parameters()) p.requiresGrad_(false);
  for (const m of target.modules()) if (m instanceof BatchNorm) m.momentum = 0;
}

/**
 * ξ ← τ_k ξ + (1 − τ_k) θ after step k of K, τ_k from `schedule`; returns τ_k.
 *
 * @example
 * const tau = updateEmaTarget(model.target, model.online, { tauBase: 0.99, tauSchedule: 'cosine' }, step, totalSteps);
 */
export function updateEmaTarget(
  target: Module,
  online: Module,
  schedule: EmaSchedule,
  step: number,
  totalSteps: number,
  fixed: ReadonlySet<Tensor> = new Set(),
): number {
  const tau = schedule.tauSchedule === 'constant' ? schedule.tauBase : tauAt(step, totalSteps, schedule.tauBase);
  emaUpdate(target, online, tau, fixed);
  return tau;
}
