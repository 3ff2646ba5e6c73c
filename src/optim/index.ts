// Optimizers, learning-rate schedules, gradient clipping and loss scaling.
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
export { GradScaler, type GradScalerOptions, type GradScalerState } from './grad_scaler.js';
