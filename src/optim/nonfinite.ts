// The guard every trainer runs between backward() and the optimizer step: a NaN or infinite loss
// term or gradient stops training there, before the update would write NaN into the weights, the
// optimizer's moments and the EMA target, and before any checkpoint of that state is written.
import type { Tensor } from '../engine/index.js';
import { fewNames, nonFiniteKeys } from '../engine/finite.js';

/**
 * Training stopped because a loss term or a gradient was NaN or infinite. The update of `step`
 * was not applied: the weights, optimizer state and EMA target are those after step - 1 (only
 * BatchNorm running statistics may hold the failed forward pass, so continue from a checkpoint,
 * never from this state).
 */
export class NonFiniteLossError extends Error {
  override readonly name = 'NonFiniteLossError';

  constructor(
    /** The step whose update was refused, counted from 1 as metrics.jsonl and checkpoint names count. */
    readonly step: number,
    /** Its epoch, counted from 1. */
    readonly epoch: number,
    /** Each non-finite loss term ('total', 'intra/image', ...) with its value. */
    readonly terms: Record<string, number>,
    /** The parameters whose gradient holds NaN or ±Infinity. */
    readonly gradients: string[],
    where: string,
    /** What to do, in the caller's terms (a run names its config keys). */
    advice = 'Lower the learning rate or clip the gradient norm.',
  ) {
    const badTerms = Object.entries(terms).map(([k, v]) => `${k} = ${v}`);
    const what =
      badTerms.length > 0
        ? `the loss is not finite (${badTerms.join(', ')})`
        : `the gradient of ${gradients.length} parameter${gradients.length === 1 ? '' : 's'} is not finite (${fewNames(gradients)})`;
    super(`${where}: training stopped at step ${step} (epoch ${epoch}): ${what}; the update of that step was not applied. ${advice}`);
  }
}

/**
 * Throws a NonFiniteLossError when a loss term or a parameter's gradient is NaN or infinite. Call
 * it after backward() and before clipping and the optimizer step; `step` and `epoch` count from 0
 * as the trainers' records do (the error counts from 1).
 *
 * @example
 * loss.backward();
 * checkFiniteStep('trainByol', step, epoch, { total: loss.item() }, byol.online.namedParameters());
 * optimizer.step();
 */
export function checkFiniteStep(
  where: string,
  step: number,
  epoch: number,
  terms: Record<string, number>,
  parameters: Iterable<readonly [string, Tensor]>,
): void {
  const badTerms = Object.fromEntries(Object.entries(terms).filter(([, v]) => !Number.isFinite(v)));
  // A finite loss can still back-propagate an overflow into a gradient.
  const grads: [string, Tensor][] = [];
  if (Object.keys(badTerms).length === 0) {
    for (const [name, p] of parameters) {
      const g = p.grad;
      if (g !== null) grads.push([name, g]);
    }
  }
  const badGradients = nonFiniteKeys(grads);
  if (Object.keys(badTerms).length > 0 || badGradients.length > 0) {
    throw new NonFiniteLossError(step + 1, epoch + 1, badTerms, badGradients, where);
  }
}
