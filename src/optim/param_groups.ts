// Splitting a model's parameters for per-group hyperparameters. BYOL (Grill et al. 2020,
// Appendix C) excludes biases and batch-norm parameters from weight decay and LARS adaptation;
// as in the PyTorch ports (and open_clip's exclusion rule), these are the parameters with fewer
// than two dimensions (biases, norm weights and biases, scalars such as a logit scale), plus any
// parameter whose name ends in "bias".
import type { Tensor } from '../engine/index.js';
import type { ParamGroupInput } from './optimizer.js';
import type { LARSHyperparameters } from './lars.js';

/** Anything with PyTorch-style named parameters (a Module), or the pairs themselves. */
export type NamedParameterSource = { namedParameters(): [string, Tensor][] } | [string, Tensor][];

/** Whether BYOL leaves a parameter out of weight decay and LARS adaptation. */
export function isBiasOrNorm(name: string, param: Tensor): boolean {
  return param.ndim < 2 || /(^|\.)bias$/.test(name);
}

/**
 * Parameters split into those that get weight decay (and LARS adaptation) and those that do not.
 *
 * @example
 * const { regular, excluded } = splitBiasAndNorm(model);
 * new AdamW([{ params: regular }, { params: excluded, weightDecay: 0 }], { lr: 1e-3 });
 */
export function splitBiasAndNorm(source: NamedParameterSource): { regular: Tensor[]; excluded: Tensor[] } {
  const named = Array.isArray(source) ? source : source.namedParameters();
  const regular: Tensor[] = [];
  const excluded: Tensor[] = [];
  for (const [name, p] of named) (isBiasOrNorm(name, p) ? excluded : regular).push(p);
  return { regular, excluded };
}

/**
 * BYOL's two LARS groups: weights (decay and adaptation from the optimizer's settings), then
 * biases and normalisation parameters (no decay, no adaptation). A group is left out when empty.
 *
 * @example
 * const opt = new LARS(larsParamGroups(model), { lr: scaleLr(0.2, 4096) });
 */
export function larsParamGroups(source: NamedParameterSource): ParamGroupInput<LARSHyperparameters>[] {
  const { regular, excluded } = splitBiasAndNorm(source);
  const groups: ParamGroupInput<LARSHyperparameters>[] = [];
  if (regular.length > 0) groups.push({ params: regular });
  if (excluded.length > 0) groups.push({ params: excluded, weightDecay: 0, excludeFromAdaptation: true });
  return groups;
}
