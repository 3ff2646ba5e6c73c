// The optimizer and learning-rate schedule for a self-supervised network's trainable parameters,
// one set-up for both trainers (src/byol/train.ts and the aligner's src/align/train.ts). LARS as in
// BYOL (Grill et al. 2020, arXiv:2006.07733, §3.3: biases and normalisation parameters excluded
// from weight decay and from the trust ratio), or AdamW/Adam with the same exclusion from weight
// decay; the rate warms up linearly and then follows a cosine (Appendix C) or stays constant.
import type { Tensor } from '../engine/index.js';
import {
  Adam,
  AdamW,
  LARS,
  LrScheduler,
  larsParamGroups,
  scaleLr,
  splitBiasAndNorm,
  warmupCosineLr,
  type GroupHyperparameters,
  type Optimizer,
} from '../optim/index.js';

export type OptimizerName = 'lars' | 'adamw' | 'adam';

/** After the linear warm-up: BYOL's cosine decay to 0, or the peak rate to the end (byol-pytorch's Adam runs). */
export type LrScheduleName = 'warmup-cosine' | 'constant';

/**
 * The optimizer and learning-rate settings both trainers take in their options; trainingOptimizer
 * documents the defaults.
 */
export interface OptimizationOptions {
  optimizer?: OptimizerName;
  /** Learning rate per 256 items when scaleLrByBatch: lr = baseLr · batch/256 (the paper: LARS 0.2); else the peak rate itself. */
  baseLr?: number;
  /** Scale the base rate by batch/256 (default true; false uses baseLr as is, as byol-pytorch's Adam). */
  scaleLrByBatch?: boolean;
  /** Decoupled for AdamW, L2 for Adam, LARS's own (the paper: 1.5e-6); biases and norms excluded. */
  weightDecay?: number;
  /** Steps of linear warm-up (default 10% of training). */
  warmupSteps?: number;
  /** 'warmup-cosine' (the paper's, the default) or 'constant' after the warm-up. */
  lrSchedule?: LrScheduleName;
  /**
   * The predictor's learning rate as a multiple of the rest's, at every step (default 1). BraVe
   * (Recasens et al. 2021, arXiv:2103.16559) trains its predictors at 10×, which the BYOL paper
   * also found to help (Grill et al. 2020, §5: a near-optimal predictor keeps the target useful).
   */
  predictorLrScale?: number;
}

/** OptimizationOptions with every default filled in, and the peak rate they give. */
export interface OptimizationSettings {
  optimizer: OptimizerName;
  baseLr: number;
  peakLr: number;
  weightDecay: number;
  warmupSteps: number;
  lrSchedule: LrScheduleName;
  predictorLrScale: number;
  totalSteps: number;
}

/** Base learning rate per optimizer when none is given: BYOL's LARS 0.2, and 1e-3 for Adam(W). */
export const DEFAULT_BASE_LR: Readonly<Record<OptimizerName, number>> = { lars: 0.2, adamw: 1e-3, adam: 1e-3 };

/**
 * Weight decay per optimizer when none is given. LARS: the paper's 1.5e-6. AdamW: 1e-4, decoupled
 * (the aligner's and the config's default). Adam: 0, because its decay is an L2 term added to the
 * gradient, which the adaptive step rescales per parameter (Loshchilov & Hutter 2019,
 * arXiv:1711.05101), and byol-pytorch's Adam, which bench/byol.ts measures against, uses none.
 */
export const DEFAULT_WEIGHT_DECAY: Readonly<Record<OptimizerName, number>> = { lars: 1.5e-6, adamw: 1e-4, adam: 0 };

/** A parameter of a predictor: the BYOL network's `predictor.…`, the aligner's `predictors.…`. */
export function isPredictorParameter(name: string): boolean {
  return /(^|\.)predictors?\./.test(name);
}

/**
 * @example
 * const optimizer = makeOptimizer(model.online.namedParameters(), 'adamw', 1e-3, 1e-4);
 */
export function makeOptimizer(
  named: [string, Tensor][],
  name: OptimizerName,
  lr: number,
  weightDecay: number,
): Optimizer<GroupHyperparameters> {
  switch (name) {
    case 'lars':
      return new LARS(larsParamGroups(named), { lr, weightDecay }) as unknown as Optimizer<GroupHyperparameters>;
    case 'adamw':
    case 'adam': {
      const { regular, excluded } = splitBiasAndNorm(named);
      const groups = [{ params: regular }, { params: excluded, weightDecay: 0 }];
      const Cls = name === 'adamw' ? AdamW : Adam;
      return new Cls(groups, { lr, weightDecay }) as unknown as Optimizer<GroupHyperparameters>;
    }
    default:
      throw unknownOptimizer(name);
  }
}

function unknownOptimizer(name: unknown): Error {
  return new Error(`unknown optimizer '${String(name)}' (expected 'lars', 'adamw' or 'adam')`);
}

/** What trainingOptimizer returns: the optimizer, its scheduler (at step 0) and the settings used. */
export interface TrainingOptimizer {
  optimizer: Optimizer<GroupHyperparameters>;
  scheduler: LrScheduler;
  settings: OptimizationSettings;
}

/**
 * The optimizer over `named` and its learning-rate scheduler, with one set of defaults for every
 * trainer: base rate DEFAULT_BASE_LR[optimizer], scaled by batchSize/256 unless scaleLrByBatch is
 * false; weight decay DEFAULT_WEIGHT_DECAY[optimizer] (LARS 1.5e-6, AdamW 1e-4, Adam 0); warm-up
 * 10% of totalSteps; then a cosine decay to 0 at totalSteps ('warmup-cosine') or the peak rate
 * ('constant'). The optimizer itself has no default here: each trainer names its own (BYOL's LARS
 * for trainByol, AdamW for the aligner).
 *
 * @example
 * const { optimizer, scheduler } = trainingOptimizer(model.online.namedParameters(),
 *   { optimizer: 'adamw', baseLr: 1e-3 }, { batchSize: 256, totalSteps: 10_000 });
 * // each step: loss.backward(); optimizer.step(); scheduler.step();
 */
export function trainingOptimizer(
  named: [string, Tensor][],
  options: OptimizationOptions & { optimizer: OptimizerName },
  run: { batchSize: number; totalSteps: number },
): TrainingOptimizer {
  const { optimizer: name } = options;
  if (!Object.hasOwn(DEFAULT_BASE_LR, name)) throw unknownOptimizer(name);
  const { batchSize, totalSteps } = run;
  const baseLr = options.baseLr ?? DEFAULT_BASE_LR[name];
  const settings: OptimizationSettings = {
    optimizer: name,
    baseLr,
    peakLr: options.scaleLrByBatch === false ? baseLr : scaleLr(baseLr, batchSize),
    weightDecay: options.weightDecay ?? DEFAULT_WEIGHT_DECAY[name],
    warmupSteps: options.warmupSteps ?? Math.round(totalSteps / 10),
    lrSchedule: options.lrSchedule ?? 'warmup-cosine',
    predictorLrScale: options.predictorLrScale ?? 1,
    totalSteps,
  };
  const { peakLr, warmupSteps, lrSchedule, predictorLrScale } = settings;
  if (!(predictorLrScale > 0)) throw new RangeError(`predictorLrScale must be a number > 0, got ${predictorLrScale}`);
  // With a scale the predictor's parameters come last, in groups of their own: the optimizer's
  // groups (and so its saved state) are those of before whenever the scale is 1.
  const scaled = predictorLrScale === 1 ? [] : named.filter(([n]) => isPredictorParameter(n));
  const rest = scaled.length === 0 ? named : named.filter(([n]) => !isPredictorParameter(n));
  const optimizer = makeOptimizer(rest, name, peakLr, settings.weightDecay);
  const groupScales = optimizer.paramGroups.map(() => 1);
  if (scaled.length > 0) {
    for (const group of makeOptimizer(scaled, name, peakLr, settings.weightDecay).paramGroups) {
      optimizer.addParamGroup(group);
      groupScales.push(predictorLrScale);
    }
  }
  const scheduler = new LrScheduler(
    optimizer,
    (step, group) =>
      groupScales[group]! *
      (lrSchedule === 'constant' && step >= warmupSteps ? peakLr : warmupCosineLr(step, { peakLr, warmupSteps, totalSteps })),
  );
  return { optimizer, scheduler, settings };
}
