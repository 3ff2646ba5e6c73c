// Training BYOL on a set of images, as a library function: data order, the two augmented views,
// the optimizer (LARS as in the paper, or AdamW/Adam), warm-up + cosine learning rate with
// lr = base·batch/256, the τ schedule, gradient clipping, and a per-step log with the collapse
// monitor.
//
// Devices, as the aligner's trainer (src/align/train.ts): the model (online and EMA target) moves
// to options.device before the optimizer takes its parameters, the images stay where they are
// (the CPU) and each batch is copied to the device before its views are made there, so the views,
// the loss and the optimizer state live on the device too.
import { Generator, keep, noGrad, randperm, cacheCpuBlocks, tidy, type Device, type Tensor } from '../engine/index.js';
import { clipGradNorm } from '../optim/index.js';
import { checkFiniteStep } from '../optim/nonfinite.js';
import { trainingOptimizer, type OptimizationOptions, type OptimizerName } from './optimizer.js';
import { augmentView, type ViewConfig } from '../modalities/image/augment.js';
import { COLLAPSE_WARNING_RATIO, collapseReading } from '../eval/collapse.js';
import type { Byol } from './model.js';
import { moveModule, onDevice } from '../nn/device.js';

export type { OptimizerName };
export { NonFiniteLossError } from '../optim/nonfinite.js';

/** The data, its views and length; the optimizer and schedule as trainingOptimizer sets them, with LARS by default. */
export interface ByolTrainOptions extends OptimizationOptions {
  /** uint8 images [N, C, H, W]. */
  images: Tensor;
  views: [ViewConfig, ViewConfig];
  batchSize?: number;
  /** Give epochs or steps; steps wins when both are given. */
  epochs?: number;
  steps?: number;
  /** Clip the global gradient norm to this (off when undefined). */
  clipGradNorm?: number;
  seed?: number;
  /**
   * Where the model, the EMA target, the optimizer state and every step's views and loss live:
   * 'cpu' (default) or 'cuda:N' (src/run/device.ts resolves a setting such as 'auto' into one).
   */
  device?: Device;
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
  const device = options.device ?? 'cpu';
  // Every step frees and allocates the same activations: keep freed blocks for the next step.
  cacheCpuBlocks();
  // Before the optimizer takes the parameters: moving a module replaces its tensors.
  moveModule(byol, device);
  const named = byol.online.namedParameters();
  // LARS by default: this trainer reproduces the paper's set-up.
  const { optimizer, scheduler } = trainingOptimizer(
    named,
    { ...options, optimizer: options.optimizer ?? 'lars' },
    { batchSize, totalSteps },
  );
  const orderGenerator = new Generator(options.seed ?? 0);
  const viewGenerator = new Generator((options.seed ?? 0) + 1, device);
  const records: ByolStepRecord[] = [];
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
      // Gathered where the images are, then copied as uint8 to the device.
      const batch = onDevice(options.images.index([order!.slice(0, inEpoch * batchSize, (inEpoch + 1) * batchSize)]), device);
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
