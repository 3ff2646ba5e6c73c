// Training BYOL on a set of images, as a library function: data order, the two augmented views,
// the optimizer (LARS as in the paper, or AdamW/Adam), warm-up + cosine learning rate with
// lr = base·batch/256, the τ schedule, gradient clipping, and a per-step log with the collapse
// monitor.
import { Generator, keep, noGrad, randperm, tidy, type Tensor } from '../engine/index.js';
import { LrScheduler, clipGradNorm, scaleLr, warmupCosineLr } from '../optim/index.js';
import { checkFiniteStep } from '../optim/nonfinite.js';
import { makeOptimizer, type OptimizerName } from './optimizer.js';
import { augmentView, type ViewConfig } from '../modalities/image/augment.js';
import { COLLAPSE_WARNING_RATIO, collapseReading } from '../eval/collapse.js';
import type { Byol } from './model.js';

export type { OptimizerName };
export { NonFiniteLossError } from '../optim/nonfinite.js';

export interface ByolTrainOptions {
  /** uint8 images [N, C, H, W]. */
  images: Tensor;
  views: [ViewConfig, ViewConfig];
  batchSize?: number;
  /** Give epochs or steps; steps wins when both are given. */
  epochs?: number;
  steps?: number;
  optimizer?: OptimizerName;
  /** Learning rate per 256 items: lr = baseLr · batch/256 (the paper: LARS 0.2). */
  baseLr?: number;
  /** Scale the base rate by batch/256 (default true; false uses baseLr as is, as byol-pytorch's Adam). */
  scaleLrByBatch?: boolean;
  /** Decoupled for AdamW, L2 for Adam, LARS's own (the paper: 1.5e-6); biases and norms excluded. */
  weightDecay?: number;
  /** Steps of linear warm-up (default 10% of training). */
  warmupSteps?: number;
  /** 'warmup-cosine' (the paper's) or 'constant' after the warm-up (byol-pytorch's Adam runs). */
  lrSchedule?: 'warmup-cosine' | 'constant';
  /** Clip the global gradient norm to this (off when undefined). */
  clipGradNorm?: number;
  seed?: number;
  /** Called after every step with its log record. */
  onStep?: (record: ByolStepRecord) => void;
  /** Called when the collapse monitor falls below COLLAPSE_WARNING_RATIO. */
  onCollapseWarning?: (record: ByolStepRecord) => void;
}

export interface ByolStepRecord {
  step: number;
  epoch: number;
  loss: number;
  lr: number;
  tau: number;
  /** Per-dimension std of the l2-normalised online projections, and its ratio to 1/√d. */
  collapseStd: number;
  collapseRatio: number;
}

/**
 * Trains `byol` in place and returns the per-step records. A NaN or infinite loss or gradient
 * throws a NonFiniteLossError before that step's update (and its onStep).
 *
 * @example
 * const log = trainByol(byol, { images, views: [byolView1(28, 1), byolView2(28, 1)], epochs: 4, optimizer: 'adam', baseLr: 3e-4, scaleLrByBatch: false });
 */
export function trainByol(byol: Byol, options: ByolTrainOptions): ByolStepRecord[] {
  const n = options.images.shape[0]!;
  const batchSize = options.batchSize ?? 256;
  if (n < batchSize) throw new RangeError(`trainByol: ${n} images are fewer than one batch of ${batchSize}`);
  const stepsPerEpoch = Math.floor(n / batchSize); // the last partial batch is dropped, as drop_last=True
  const totalSteps = options.steps ?? (options.epochs ?? 1) * stepsPerEpoch;
  const optimizerName = options.optimizer ?? 'lars';
  const baseLr = options.baseLr ?? (optimizerName === 'lars' ? 0.2 : 1e-3);
  const peakLr = options.scaleLrByBatch === false ? baseLr : scaleLr(baseLr, batchSize);
  const weightDecay = options.weightDecay ?? (optimizerName === 'lars' ? 1.5e-6 : 0);
  const optimizer = makeOptimizer(byol.online.namedParameters(), optimizerName, peakLr, weightDecay);
  const warmupSteps = options.warmupSteps ?? Math.round(totalSteps / 10);
  const constant = options.lrSchedule === 'constant';
  const scheduler = new LrScheduler(optimizer, (step) =>
    constant && step >= warmupSteps ? peakLr : warmupCosineLr(step, { peakLr, warmupSteps, totalSteps }),
  );
  const orderGenerator = new Generator(options.seed ?? 0);
  const viewGenerator = new Generator((options.seed ?? 0) + 1);
  const records: ByolStepRecord[] = [];
  const named = byol.online.namedParameters();
  const params = named.map(([, p]) => p);
  byol.train();

  let order: Tensor | null = null;
  for (let step = 0; step < totalSteps; step++) {
    const epoch = Math.floor(step / stepsPerEpoch);
    const inEpoch = step % stepsPerEpoch;
    if (inEpoch === 0) {
      order?.dispose();
      order = keep(randperm(n, { generator: orderGenerator }));
    }
    const lr = scheduler.currentLrs()[0]!;
    const record = tidy(() => {
      const batch = options.images.index([order!.slice(0, inEpoch * batchSize, (inEpoch + 1) * batchSize)]);
      const view1 = augmentView(batch, options.views[0], viewGenerator);
      const view2 = augmentView(batch, options.views[1], viewGenerator);
      optimizer.zeroGrad();
      const { loss, onlineProjections } = byol.trainingStep(view1, view2);
      loss.backward();
      const lossValue = loss.item();
      checkFiniteStep('trainByol', step, epoch, { total: lossValue }, named);
      if (options.clipGradNorm !== undefined) clipGradNorm(params, options.clipGradNorm);
      optimizer.step();
      const tau = byol.updateTarget(step, totalSteps);
      const collapse = collapseReading(onlineProjections);
      return { step, epoch, loss: lossValue, lr, tau, collapseStd: collapse.std, collapseRatio: collapse.ratio };
    });
    scheduler.step();
    records.push(record);
    options.onStep?.(record);
    if (record.collapseRatio < COLLAPSE_WARNING_RATIO) options.onCollapseWarning?.(record);
  }
  order?.dispose();
  noGrad(() => byol.eval());
  return records;
}
