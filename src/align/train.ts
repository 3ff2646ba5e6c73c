// Training the heterogeneous aligner: batches of paired items from any source, two views per
// modality from each modality plug-in, the configured mix of intra-modal BYOL, cross-modal BYOL and
// InfoNCE (loss.ts), the optimizer and learning-rate schedule of the single-modality trainer, the
// EMA target, and a per-step log with each loss term, the collapse monitor per modality and the
// time spent waiting for data.
import { Generator, tidy, type Tensor } from '../engine/index.js';
import { LrScheduler, clipGradNorm, scaleLr, warmupCosineLr } from '../optim/index.js';
import { makeOptimizer, type OptimizerName } from '../byol/optimizer.js';
import { collapseReading } from '../eval/collapse.js';
import type { Modality } from '../modalities/modality.js';
import type { AlignModel, ModalityViews } from './model.js';
import { alignmentLoss, lossNumbers, type AlignmentLossWeights } from './loss.js';
import { LogitScale } from './infonce.js';

/** One batch: its size and, per modality, the collated inputs of the rows that have it. */
export interface AlignBatch {
  size: number;
  inputs: Map<string, { batch: Tensor; rows: Tensor | null }>;
  /** Milliseconds the trainer waited for this batch (filled by the trainer). */
  waitMs?: number;
}

export interface AlignTrainOptions {
  modalities: Modality[];
  /** The batches of one epoch, in order (a fresh shuffle per epoch is the source's job). */
  batches: (epoch: number) => AsyncIterable<AlignBatch>;
  stepsPerEpoch: number;
  epochs: number;
  batchSize: number;
  weights: AlignmentLossWeights;
  /**
   * A first stage: this many epochs at the start train with firstStageWeights instead of
   * `weights`, e.g. intra-modal BYOL alone before the cross-modal terms join. Default 0.
   */
  firstStageEpochs?: number;
  firstStageWeights?: AlignmentLossWeights;
  optimizer?: OptimizerName;
  /** Learning rate per 256 items when scaleLrByBatch (default true), else the peak rate itself. */
  baseLr?: number;
  scaleLrByBatch?: boolean;
  weightDecay?: number;
  /** Default 10% of training. */
  warmupSteps?: number;
  lrSchedule?: 'warmup-cosine' | 'constant';
  clipGradNorm?: number;
  seed?: number;
  onStep?: (record: AlignStepRecord) => void;
  /** Called after each epoch, e.g. for validation retrieval; awaited. */
  onEpoch?: (epoch: number) => Promise<void> | void;
}

export interface AlignStepRecord {
  step: number;
  epoch: number;
  loss: number;
  /** Each term's value: 'intra/image', 'cross/image->text', 'infonce/image<->text', 'logitScale' (see lossNumbers). */
  terms: Record<string, number>;
  lr: number;
  tau: number;
  /** Collapse ratio (1 healthy, → 0 collapsed) of each modality's online projections. */
  collapse: Record<string, number>;
  waitMs: number;
  stepMs: number;
}

/**
 * Trains `model` in place; returns the per-step records.
 *
 * @example
 * const log = await trainAlignment(model, { modalities, batches, stepsPerEpoch, epochs: 10, batchSize: 256,
 *   weights: { intraWeight: 1, crossWeight: 1, infoNceWeight: 0 }, optimizer: 'adamw', baseLr: 1e-3 });
 */
export async function trainAlignment(model: AlignModel, options: AlignTrainOptions): Promise<AlignStepRecord[]> {
  const totalSteps = options.epochs * options.stepsPerEpoch;
  const optimizerName = options.optimizer ?? 'adamw';
  const baseLr = options.baseLr ?? (optimizerName === 'lars' ? 0.2 : 1e-3);
  const peakLr = options.scaleLrByBatch === false ? baseLr : scaleLr(baseLr, options.batchSize);
  const weightDecay = options.weightDecay ?? (optimizerName === 'lars' ? 1.5e-6 : 1e-4);
  const firstStageEpochs = options.firstStageEpochs ?? 0;
  if (!Number.isInteger(firstStageEpochs) || firstStageEpochs < 0 || firstStageEpochs > options.epochs)
    throw new RangeError(
      `trainAlignment: firstStageEpochs must be an integer from 0 to epochs (${options.epochs}), got ${firstStageEpochs}`,
    );
  if (firstStageEpochs > 0 && options.firstStageWeights === undefined)
    throw new TypeError('trainAlignment: firstStageEpochs needs firstStageWeights, the loss weights of the first stage');
  const weightsOf = (epoch: number): AlignmentLossWeights => (epoch < firstStageEpochs ? options.firstStageWeights! : options.weights);
  const usesInfoNce = options.weights.infoNceWeight > 0 || (firstStageEpochs > 0 && options.firstStageWeights!.infoNceWeight > 0);
  // CLIP's learnable temperature, trained only when InfoNCE is part of the loss.
  const logitScale = usesInfoNce ? new LogitScale() : undefined;
  const named = [...model.online.namedParameters(), ...(logitScale?.namedParameters('logitScale.') ?? [])];
  const optimizer = makeOptimizer(named, optimizerName, peakLr, weightDecay);
  const warmupSteps = options.warmupSteps ?? Math.round(totalSteps / 10);
  const constant = options.lrSchedule === 'constant';
  const scheduler = new LrScheduler(optimizer, (step) =>
    constant && step >= warmupSteps ? peakLr : warmupCosineLr(step, { peakLr, warmupSteps, totalSteps }),
  );
  const viewGenerator = new Generator((options.seed ?? 0) + 1);
  const params = named.map(([, p]) => p);
  const byName = new Map(options.modalities.map((m) => [m.name, m]));
  const records: AlignStepRecord[] = [];
  model.train();

  let step = 0;
  for (let epoch = 0; epoch < options.epochs; epoch++) {
    let inEpoch = 0;
    let waitStart = performance.now();
    for await (const batch of options.batches(epoch)) {
      if (inEpoch >= options.stepsPerEpoch) break;
      const waitMs = performance.now() - waitStart;
      const stepStart = performance.now();
      const lr = scheduler.currentLrs()[0]!;
      const record = tidy(() => {
        const views = new Map<string, ModalityViews>();
        for (const [name, input] of batch.inputs) {
          const modality = byName.get(name);
          if (!modality) throw new Error(`trainAlignment: the batch has modality '${name}', which is not configured`);
          const [view1, view2] = modality.views(input.batch, viewGenerator);
          views.set(name, { view1, view2, rows: input.rows });
        }
        optimizer.zeroGrad();
        const outputs = model.forwardViews(views, batch.size);
        const loss = alignmentLoss(outputs, weightsOf(epoch), logitScale);
        loss.total.backward();
        if (options.clipGradNorm !== undefined) clipGradNorm(params, options.clipGradNorm);
        optimizer.step();
        logitScale?.clamp_(); // CLIP's cap of 100 on the logit scale, after the step as open_clip does
        const tau = model.updateTarget(step, totalSteps);
        const collapse: Record<string, number> = {};
        for (const [name, o] of outputs)
          collapse[name] = collapseReading(views.get(name)!.rows === null ? o.p1 : o.p1.index([o.present])).ratio;
        const terms = lossNumbers(loss);
        return { step, epoch, loss: terms.total!, terms, lr, tau, collapse, waitMs, stepMs: 0 };
      });
      for (const { batch: t, rows } of batch.inputs.values()) {
        t.dispose();
        rows?.dispose();
      }
      record.stepMs = performance.now() - stepStart;
      scheduler.step();
      records.push(record);
      options.onStep?.(record);
      step++;
      inEpoch++;
      waitStart = performance.now();
    }
    if (inEpoch === 0) throw new Error(`trainAlignment: epoch ${epoch} produced no batches`);
    await options.onEpoch?.(epoch);
    model.train();
  }
  model.eval();
  return records;
}
