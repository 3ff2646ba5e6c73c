// Optimizers, learning-rate schedules and gradient clipping.
export {
  Optimizer,
  type GroupHyperparameters,
  type ParamGroup,
  type ParamGroupInput,
  type ParamState,
  type OptimizerStateDict,
  type OptimizerStateMeta,
  type JsonValue,
} from './optimizer.js';
export { SGD, type SGDHyperparameters, type SGDState } from './sgd.js';
export { Adam, type AdamHyperparameters, type AdamState } from './adam.js';
export { AdamW } from './adamw.js';
export { LARS, byolLarsDefaults, type LARSHyperparameters, type LARSState } from './lars.js';
export { isBiasOrNorm, splitBiasAndNorm, larsParamGroups, type NamedParameterSource } from './param_groups.js';
export { scaleLr, warmupCosineLr, warmupCosine, LrScheduler, type WarmupCosineOptions } from './schedule.js';
export { clipGradNorm } from './clip.js';
