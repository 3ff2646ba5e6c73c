// Training the heterogeneous aligner: batches of paired items from any source, two views per
// modality from each modality plug-in, the configured mix of intra-modal BYOL, cross-modal BYOL and
// InfoNCE (loss.ts), the optimizer and learning-rate schedule of the single-modality trainer, the
// EMA target, and a per-step log with each loss term, the collapse monitor per modality and the
// time spent waiting for data.
//
// Resuming is exact by construction: every random draw of step k (the views' generator and the
// global one, used by dropout) is seeded from (seed, k), the data source restarts an epoch at any
// batch, and the state dict holds everything else that changes (weights, EMA target, BatchNorm
// statistics, optimizer moments, the step).
//
// Devices: the trainer moves the model (online and EMA target) and its own parameters to
// `options.device`; each batch arrives on the CPU and is copied there before its views are made, so
// the views, the losses and the optimizer state live there too. The state dict holds CPU copies,
// so a checkpoint resumes on any device (exactly only on the one that wrote it: CUDA draws its own
// random numbers).
//
// Mixed precision (options.precision, precision.ts): the forward pass of both networks runs under
// autocast, and its outputs are cast to float32 before the losses, so the losses, the optimizer,
// the EMA target and the weights stay float32. fp16 adds a gradient scaler whose skipped steps
// each step's record counts.
import { autocast, Generator, cacheCpuBlocks, manualSeed, tidy, type Device, type Tensor } from '../engine/index.js';
import { hash32 } from '../data/epoch_order.js';
import {
  clipGradNorm,
  GradScaler,
  type GradScalerOptions,
  type GradScalerState,
  type GroupHyperparameters,
  type LrScheduler,
  type Optimizer,
  type OptimizerStateDict,
} from '../optim/index.js';
import { trainingOptimizer, type OptimizationOptions, type OptimizationSettings } from '../byol/optimizer.js';
import { collapseReading } from '../eval/collapse.js';
import type { Modality } from '../modalities/modality.js';
import type { AlignModel, ModalityOutputs, ModalityViews } from './model.js';
import { alignmentLoss, lossNumbers, type AlignmentLossWeights } from './loss.js';
import { LogitScale } from './infonce.js';
import { checkFiniteStep } from '../optim/nonfinite.js';
import { cpuCopy, moveModule, onDevice } from './device.js';
import { autocastDtypeOf, precisionProblem, type Precision } from './precision.js';

export { NonFiniteLossError } from '../optim/nonfinite.js';

/** One batch: its size and, per modality, the collated inputs of the rows that have it. */
export interface AlignBatch {
  size: number;
  inputs: Map<string, { batch: Tensor; rows: Tensor | null; encoded?: boolean }>;
  /** Milliseconds the trainer waited for this batch (filled by the trainer). */
  waitMs?: number;
}

/**
 * The data, the loss and the training's length; the optimizer and schedule as trainingOptimizer
 * sets them, with AdamW by default.
 */
export interface AlignTrainOptions extends OptimizationOptions {
  modalities: Modality[];
  /**
   * The batches of one epoch, in order, from batch `fromStep` on (a fresh shuffle per epoch is the
   * source's job). To resume exactly, epoch e's batches must depend only on e, and fromStep must
   * skip that many (ManifestLoader does both).
   */
  batches: (epoch: number, fromStep: number) => AsyncIterable<AlignBatch>;
  stepsPerEpoch: number;
  epochs: number;
  /** Total steps, when training ends inside an epoch; default epochs × stepsPerEpoch (at most that). */
  steps?: number;
  batchSize: number;
  weights: AlignmentLossWeights;
  /**
   * A first stage: this many epochs at the start train with firstStageWeights instead of
   * `weights`, e.g. intra-modal BYOL alone before the cross-modal terms join. Default 0.
   */
  firstStageEpochs?: number;
  firstStageWeights?: AlignmentLossWeights;
  clipGradNorm?: number;
  seed?: number;
  /**
   * Where the model, the EMA target, the optimizer state and every step's views and losses live:
   * 'cpu' (default) or 'cuda:N' (src/run/device.ts resolves a setting such as 'auto' into one).
   */
  device?: Device;
  /**
   * The forward pass's precision: 'fp32' (default), 'bf16' (autocast to bfloat16, CPU or CUDA) or
   * 'fp16' (autocast to float16 with a gradient scaler; CUDA only). Everything after the forward
   * stays float32.
   */
  precision?: Precision;
  /**
   * Settings of fp16's gradient scaler (torch.cuda.amp.GradScaler's defaults). Given with another
   * precision, the scaler runs there too (the tests drive it in fp32 on the CPU).
   */
  gradScaler?: GradScalerOptions;
  /**
   * This process's rank in data-parallel training (src/distributed/): mixed into each step's random
   * draws, so that the ranks draw independent views of their different rows. 0 (default) draws
   * exactly as one process does.
   */
  rank?: number;
  onStep?: (record: AlignStepRecord) => void;
  /** Called after each epoch, e.g. for validation retrieval; awaited. */
  onEpoch?: (epoch: number) => Promise<void> | void;
}

/**
 * One training step's record (step and epoch from 0). src/run/train_run.ts writes it as a line of
 * metrics.jsonl with both counted from 1, and src/report/metrics.ts reads that line as this type.
 */
export interface AlignStepRecord {
  step: number;
  epoch: number;
  loss: number;
  /**
   * The total and each weighted term's value before its weight: 'total', 'intra/image',
   * 'cross/image->text', 'infonce/image<->text', 'logitScale' (see lossNumbers). A term whose
   * weight is 0 at this step (e.g. in a first stage) is not computed and has no key.
   */
  terms: Record<string, number>;
  lr: number;
  tau: number;
  /** Collapse ratio (1 healthy, → 0 collapsed) of each modality's online projections. */
  collapse: Record<string, number>;
  waitMs: number;
  stepMs: number;
  /** With a gradient scaler (fp16): the scale this step's loss was multiplied by. */
  lossScale?: number;
  /**
   * With a gradient scaler: the steps skipped so far, this one included, because a gradient was
   * inf or NaN (the optimizer did not step; the scale backed off).
   */
  skippedSteps?: number;
}

/** What an AlignTrainer's state dict holds besides tensors. */
export interface AlignTrainerMeta {
  step: number;
  optimizer: OptimizerStateDict['meta'];
  /** The gradient scaler's state, when the trainer has one (fp16). */
  scaler?: GradScalerState;
}

export interface AlignRunHooks {
  /** End this run after this many steps (the schedules stay those of the whole training). */
  stopAfter?: number;
  /** Checked after every step; true ends the run there (e.g. after SIGINT). */
  shouldStop?: () => boolean;
  /** Called after every step with the trainer, e.g. to write a checkpoint every N steps; awaited. */
  afterStep?: (trainer: AlignTrainer) => Promise<void> | void;
}

/**
 * The training state and loop of the aligner. run() trains from the current step to the end (or
 * to a stop); stateDict()/loadStateDict() carry everything a resumed run needs.
 *
 * @example
 * const trainer = new AlignTrainer(model, options);
 * await trainer.run({ stopAfter: 100 });      // steps 0–99
 * const { tensors, meta } = trainer.stateDict();
 * // ... later, in a fresh process with the same model and options:
 * resumed.loadStateDict({ tensors, meta });
 * await resumed.run();                          // steps 100 to the end, as if never stopped
 */
export class AlignTrainer {
  readonly totalSteps: number;
  readonly optimizer: Optimizer<GroupHyperparameters>;
  readonly scheduler: LrScheduler;
  /** The optimizer and schedule settings, defaults filled in. */
  readonly optimization: OptimizationSettings;
  /** CLIP's learnable temperature, present when InfoNCE is part of the loss. */
  readonly logitScale: LogitScale | undefined;
  /** Where the model and every step's tensors are (options.device, default 'cpu'). */
  readonly device: Device;
  /** The forward pass's precision (options.precision, default 'fp32'). */
  readonly precision: Precision;
  /** fp16's loss scaler (or one asked for by options.gradScaler); undefined otherwise. */
  readonly gradScaler: GradScaler | undefined;
  readonly #named: [string, Tensor][];
  readonly #params: Tensor[];
  readonly #weightsOf: (epoch: number) => AlignmentLossWeights;
  readonly #byName: Map<string, Modality>;
  #step = 0;

  constructor(
    readonly model: AlignModel,
    readonly options: AlignTrainOptions,
  ) {
    const planned = options.epochs * options.stepsPerEpoch;
    if (options.steps !== undefined && !(Number.isInteger(options.steps) && options.steps > 0 && options.steps <= planned))
      throw new RangeError(`trainAlignment: steps must be an integer from 1 to epochs × stepsPerEpoch (${planned}), got ${options.steps}`);
    this.totalSteps = options.steps ?? planned;
    const firstStageEpochs = options.firstStageEpochs ?? 0;
    if (!Number.isInteger(firstStageEpochs) || firstStageEpochs < 0 || firstStageEpochs > options.epochs)
      throw new RangeError(
        `trainAlignment: firstStageEpochs must be an integer from 0 to epochs (${options.epochs}), got ${firstStageEpochs}`,
      );
    if (firstStageEpochs > 0 && options.firstStageWeights === undefined)
      throw new TypeError('trainAlignment: firstStageEpochs needs firstStageWeights, the loss weights of the first stage');
    this.#weightsOf = (epoch) => (epoch < firstStageEpochs ? options.firstStageWeights! : options.weights);
    const usesInfoNce = options.weights.infoNceWeight > 0 || (firstStageEpochs > 0 && options.firstStageWeights!.infoNceWeight > 0);
    // Before the optimizer takes the parameters: moving a module replaces its tensors.
    this.device = options.device ?? 'cpu';
    this.precision = options.precision ?? 'fp32';
    const problem = precisionProblem(this.precision, this.device);
    if (problem !== null) throw new RangeError(`trainAlignment: precision ${problem} (train.precision in a config)`);
    this.gradScaler = this.precision === 'fp16' || options.gradScaler !== undefined ? new GradScaler(options.gradScaler) : undefined;
    moveModule(model, this.device);
    // CLIP's learnable temperature, trained only when InfoNCE is part of the loss.
    this.logitScale = usesInfoNce ? new LogitScale() : undefined;
    if (this.logitScale) moveModule(this.logitScale, this.device);
    // Frozen parameters (freeze.ts) need no gradient: out of the optimizer, its state and weight decay.
    const named = [...model.online.namedParameters(), ...(this.logitScale?.namedParameters('logitScale.') ?? [])].filter(
      ([, p]) => p.requiresGrad,
    );
    // AdamW by default: the config's default, and what the aligner's transformer encoders train with.
    const optimizerName = options.optimizer ?? 'adamw';
    const training = trainingOptimizer(
      named,
      { ...options, optimizer: optimizerName },
      { batchSize: options.batchSize, totalSteps: this.totalSteps },
    );
    ({ optimizer: this.optimizer, scheduler: this.scheduler, settings: this.optimization } = training);
    this.#named = named;
    this.#params = named.map(([, p]) => p);
    this.#byName = new Map(options.modalities.map((m) => [m.name, m]));
    // Every step frees and allocates the same activations: keep freed blocks for the next step.
    cacheCpuBlocks();
  }

  /** Steps trained so far. */
  get step(): number {
    return this.#step;
  }

  /**
   * Trains from the current step; returns the records of the steps this run trained. A NaN or
   * infinite loss term or gradient throws a NonFiniteLossError before that step's update, its
   * onStep record and afterStep, so nothing downstream ever sees a non-finite state (with a
   * gradient scaler, a non-finite gradient skips the step instead, as torch's GradScaler does).
   */
  async run(hooks: AlignRunHooks = {}): Promise<AlignStepRecord[]> {
    const { model, options } = this;
    const spe = options.stepsPerEpoch;
    const records: AlignStepRecord[] = [];
    const until = Math.min(this.totalSteps, this.#step + (hooks.stopAfter ?? Infinity));
    model.train();
    while (this.#step < until) {
      const epoch = Math.floor(this.#step / spe);
      const fromStep = this.#step % spe;
      let trained = 0;
      let waitStart = performance.now();
      for await (const batch of options.batches(epoch, fromStep)) {
        const waitMs = performance.now() - waitStart;
        const record = this.#trainStep(batch, epoch, waitMs);
        records.push(record);
        options.onStep?.(record);
        trained++;
        await hooks.afterStep?.(this);
        if (this.#step >= until || this.#step % spe === 0 || hooks.shouldStop?.()) break;
        waitStart = performance.now();
      }
      if (trained === 0) throw new Error(`trainAlignment: epoch ${epoch} produced no batches from batch ${fromStep}`);
      if (this.#step % spe !== 0) {
        if (this.#step >= until || hooks.shouldStop?.()) break;
        // The source ran dry before stepsPerEpoch batches (items skipped as bad): the epoch ends
        // here, and the step count and schedules move to the next epoch's start as planned.
        this.#step = (epoch + 1) * spe;
        this.scheduler.setStep(this.#step);
      }
      await options.onEpoch?.(epoch);
      model.train();
      if (hooks.shouldStop?.()) break;
    }
    model.eval();
    return records;
  }

  #trainStep(batch: AlignBatch, epoch: number, waitMs: number): AlignStepRecord {
    const { optimizer, logitScale, device, gradScaler } = this;
    const step = this.#step;
    const stepStart = performance.now();
    const lr = this.scheduler.currentLrs()[0]!;
    const seed = this.options.seed ?? 0;
    const rank = this.options.rank ?? 0;
    // Every random draw of this step from (seed, step) (and a data-parallel rank): a resumed run repeats it exactly.
    const stream = (word: number): number => (rank === 0 ? hash32(seed, step, word) : hash32(seed, step, word, rank));
    manualSeed(stream(0x676c6f62));
    const viewGenerator = new Generator(stream(0x76696577), device);
    let record: AlignStepRecord;
    try {
      record = tidy(() => {
        const views = new Map<string, ModalityViews>();
        for (const [name, input] of batch.inputs) {
          const modality = this.#byName.get(name);
          if (!modality) throw new Error(`trainAlignment: the batch has modality '${name}', which is not configured`);
          // Collated on the CPU (uint8 images, token ids, vectors), copied here as they are; a frozen
          // tower's cached features (feature_cache.ts) are both views as they are.
          const collated = onDevice(input.batch, device);
          const [view1, view2] = input.encoded === true ? [collated, collated] : modality.views(collated, viewGenerator);
          views.set(name, { view1, view2, rows: input.rows && onDevice(input.rows, device), encoded: input.encoded });
        }
        optimizer.zeroGrad();
        const outputs = this.#forward(views, batch.size);
        const loss = alignmentLoss(outputs, this.#weightsOf(epoch), logitScale);
        const lossScale = gradScaler?.scale;
        (gradScaler ? gradScaler.scaleLoss(loss.total) : loss.total).backward();
        const terms = lossNumbers(loss);
        if (gradScaler) {
          // A non-finite loss stops training as without the scaler; a gradient that overflowed is
          // the scaler's to handle: the step is skipped and the scale backs off.
          checkFiniteStep('trainAlignment', step, epoch, terms, []);
          const overflowed = gradScaler.unscale_(this.#named);
          if (overflowed.length === 0 && this.options.clipGradNorm !== undefined) clipGradNorm(this.#params, this.options.clipGradNorm);
          gradScaler.step(optimizer);
          gradScaler.update();
        } else {
          checkFiniteStep('trainAlignment', step, epoch, terms, this.#named);
          if (this.options.clipGradNorm !== undefined) clipGradNorm(this.#params, this.options.clipGradNorm);
          optimizer.step();
        }
        logitScale?.clamp_(); // CLIP's cap of 100 on the logit scale, after the step as open_clip does
        const tau = this.model.updateTarget(step, this.totalSteps);
        const collapse: Record<string, number> = {};
        // Outputs with more rows than the batch are a data-parallel wrapper's (src/distributed/): the
        // global batch's, whose rows only `present` tells.
        for (const [name, o] of outputs) {
          const everyRow = views.get(name)?.rows === null && o.p1.shape[0] === batch.size;
          collapse[name] = collapseReading(everyRow ? o.p1 : o.p1.index([o.present])).ratio;
        }
        const scaling = gradScaler ? { lossScale, skippedSteps: gradScaler.skippedSteps } : {};
        return { step, epoch, loss: terms.total!, terms, lr, tau, collapse, waitMs, stepMs: 0, ...scaling };
      });
    } finally {
      // The batch's tensors were made outside the scope; they are freed even when the step throws.
      for (const { batch: t, rows } of batch.inputs.values()) {
        t.dispose();
        rows?.dispose();
      }
    }
    record.stepMs = performance.now() - stepStart;
    this.scheduler.step();
    this.#step++;
    return record;
  }

  /**
   * Both networks' outputs for a step's views, in float32 whatever the precision: under autocast
   * the matmuls and convolutions give bfloat16 or float16, which the losses (normalisations,
   * variances, covariances, logits) must not inherit.
   */
  #forward(views: Map<string, ModalityViews>, batchSize: number): Map<string, ModalityOutputs> {
    const dtype = autocastDtypeOf(this.precision);
    if (dtype === null) return this.model.forwardViews(views, batchSize);
    const outputs = autocast(dtype, this.device, () => this.model.forwardViews(views, batchSize));
    const float32 = new Map<string, ModalityOutputs>();
    for (const [name, o] of outputs) {
      float32.set(name, {
        q1: o.q1.float(),
        q2: o.q2.float(),
        z1: o.z1.float(),
        z2: o.z2.float(),
        p1: o.p1.float(),
        p2: o.p2.float(),
        present: o.present,
      });
    }
    return float32;
  }

  /**
   * Everything that changes during training: 'model.*' (online and target weights, BatchNorm
   * statistics), 'optimizer.*' (its state), 'logitScale.*', and the step. Tensors are CPU copies
   * whatever the trainer's device, so a checkpoint of them loads on any device.
   */
  stateDict(): { tensors: Map<string, Tensor>; meta: AlignTrainerMeta } {
    const tensors = new Map<string, Tensor>();
    for (const [k, t] of this.model.stateDict()) tensors.set(`model.${k}`, cpuCopy(t));
    if (this.logitScale) for (const [k, t] of this.logitScale.stateDict()) tensors.set(`logitScale.${k}`, cpuCopy(t));
    const optimizer = this.optimizer.stateDict();
    for (const [k, t] of optimizer.tensors) {
      // The optimizer's copies are on the trainer's device; a CPU one is kept as it is.
      const copy = t.device === 'cpu' ? t : cpuCopy(t);
      if (copy !== t) t.dispose();
      tensors.set(`optimizer.${k}`, copy);
    }
    const scaler = this.gradScaler ? { scaler: this.gradScaler.stateDict() } : {};
    return { tensors, meta: { step: this.#step, optimizer: optimizer.meta, ...scaler } };
  }

  /** Restores a stateDict() of a trainer with the same model and options, from any device onto this trainer's. */
  loadStateDict(state: { tensors: ReadonlyMap<string, Tensor>; meta: AlignTrainerMeta }): void {
    const { tensors, meta } = state;
    if (!Number.isInteger(meta.step) || meta.step < 0 || meta.step > this.totalSteps)
      throw new RangeError(`AlignTrainer.loadStateDict: step ${meta.step} is outside this training (0 to ${this.totalSteps} steps)`);
    const part = (prefix: string): Map<string, Tensor> =>
      new Map([...tensors].filter(([k]) => k.startsWith(prefix)).map(([k, t]) => [k.slice(prefix.length), t]));
    this.model.loadStateDict(part('model.'));
    if (this.logitScale) this.logitScale.loadStateDict(part('logitScale.'));
    this.optimizer.loadStateDict({ tensors: part('optimizer.'), meta: meta.optimizer });
    // A run that moves to fp16 on resume starts its scaler afresh; one that leaves fp16 drops it.
    if (this.gradScaler && meta.scaler) this.gradScaler.loadStateDict(meta.scaler);
    this.scheduler.setStep(meta.step);
    this.#step = meta.step;
  }
}

/**
 * Trains `model` in place from scratch; returns the per-step records.
 *
 * @example
 * const log = await trainAlignment(model, { modalities, batches, stepsPerEpoch, epochs: 10, batchSize: 256,
 *   weights: { intraWeight: 1, crossWeight: 1, infoNceWeight: 0 }, optimizer: 'adamw', baseLr: 1e-3 });
 */
export async function trainAlignment(model: AlignModel, options: AlignTrainOptions): Promise<AlignStepRecord[]> {
  return new AlignTrainer(model, options).run();
}
