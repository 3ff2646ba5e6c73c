// Batch normalisation (Ioffe & Szegedy, 2015), torch.nn.BatchNorm1d/2d: normalise each channel
// with the batch's statistics while training and with running averages of them in eval.
import { F, noGrad, ones, zeros, type Tensor } from '../engine/index.js';
import { Module } from './module.js';
import { ones_, zeros_ } from './init.js';
import { checkPositiveInt, describeShape } from './checks.js';

export interface BatchNormOptions {
  /** Added to the variance before the square root (default 1e-5). */
  eps?: number;
  /**
   * Weight of the newest batch in the running averages (default 0.1); null averages every batch
   * seen so far equally (a cumulative moving average).
   */
  momentum?: number | null;
  /** Learns a per-channel scale (weight) and shift (bias) (default true). */
  affine?: boolean;
  /**
   * Keeps running_mean, running_var and num_batches_tracked (default true); without them eval
   * mode normalises with batch statistics too.
   */
  trackRunningStats?: boolean;
}

/** What BatchNorm1d and BatchNorm2d share; they differ only in the input ranks they accept. */
export abstract class BatchNorm extends Module {
  readonly numFeatures: number;
  readonly eps: number;
  /** Writable so a BYOL target can stop its own running-average updates (momentum 0), see src/byol/model.ts. */
  momentum: number | null;
  readonly affine: boolean;
  readonly trackRunningStats: boolean;
  /**
   * How batchNormTogether runs this layer beside others (null: on its own, forwardAffine). Data-
   * parallel training sets one for all its synchronised layers, so that layers run together share
   * one collective (src/distributed/sync_batch_norm.ts).
   */
  together: BatchNormTogether | null = null;

  constructor(numFeatures: number, options: BatchNormOptions = {}) {
    super();
    checkPositiveInt(new.target.name, 'numFeatures', numFeatures);
    this.numFeatures = numFeatures;
    this.eps = options.eps ?? 1e-5;
    this.momentum = options.momentum === undefined ? 0.1 : options.momentum;
    this.affine = options.affine ?? true;
    this.trackRunningStats = options.trackRunningStats ?? true;
    this.registerParameter('weight', this.affine ? ones([numFeatures]) : null);
    this.registerParameter('bias', this.affine ? zeros([numFeatures]) : null);
    const track = this.trackRunningStats;
    this.registerBuffer('running_mean', track ? zeros([numFeatures]) : null);
    this.registerBuffer('running_var', track ? ones([numFeatures]) : null);
    this.registerBuffer('num_batches_tracked', track ? zeros([], { dtype: 'int64' }) : null);
  }

  get weight(): Tensor | null {
    return this.affine ? this.param('weight') : null;
  }
  get bias(): Tensor | null {
    return this.affine ? this.param('bias') : null;
  }
  get runningMean(): Tensor | null {
    return this.trackRunningStats ? this.param('running_mean') : null;
  }
  get runningVar(): Tensor | null {
    return this.trackRunningStats ? this.param('running_var') : null;
  }
  /** How many training batches have updated the running statistics (int64, 0-d). */
  get numBatchesTracked(): Tensor | null {
    return this.trackRunningStats ? this.param('num_batches_tracked') : null;
  }

  /** Forgets the running statistics: mean 0, variance 1, no batches seen. */
  resetRunningStats(): void {
    if (!this.trackRunningStats) return;
    zeros_(this.runningMean!);
    ones_(this.runningVar!);
    zeros_(this.numBatchesTracked!);
  }

  /** Running statistics forgotten, weight 1, bias 0. */
  resetParameters(): void {
    this.resetRunningStats();
    if (this.affine) {
      ones_(this.weight!);
      zeros_(this.bias!);
    }
  }

  /** Throws unless the input has a rank this variant normalises. */
  protected abstract checkInputRank(shape: number[]): void;

  /** input [N, C, ...] → same shape, each channel normalised. */
  override forward(input: Tensor): Tensor {
    return this.forwardAffine(input, this.weight, this.bias);
  }

  /**
   * forward with another module's scale and shift (null: none), in the same one fused op: heads
   * shared by several modalities keep one weight and bias but statistics per modality
   * (src/align/shared_head.ts), and a separate multiply and add would cost two more passes over
   * the activations, forward and backward.
   */
  forwardAffine(input: Tensor, weight: Tensor | null, bias: Tensor | null): Tensor {
    const shape = input.shape;
    this.checkInputRank(shape);
    if (shape[1] !== this.numFeatures) {
      throw new RangeError(
        `${this.constructor.name}(${this.numFeatures}): input has shape ${describeShape(shape)}, dim 1 must be ${this.numFeatures}`,
      );
    }
    const valuesPerChannel = shape.reduce((a, b) => a * b, 1) / this.numFeatures;
    if (this.training && valuesPerChannel <= 1) {
      // The batch variance of one value is 0/0; PyTorch refuses too.
      throw new RangeError(
        `${this.constructor.name}: training needs more than 1 value per channel, input has shape ${describeShape(shape)}`,
      );
    }
    let averagingFactor = this.momentum ?? 0;
    if (this.training && this.trackRunningStats) {
      const seen = this.numBatchesTracked!;
      noGrad(() => seen.add_(1));
      // momentum null: running = running + (batch − running)/n, the mean of all n batches.
      averagingFactor = this.momentum ?? 1 / seen.item();
    }
    return F.batchNorm(input, this.runningMean, this.runningVar, {
      weight,
      bias,
      // Without running statistics there is nothing else to normalise with, even in eval.
      training: this.training || !this.trackRunningStats,
      momentum: averagingFactor,
      eps: this.eps,
    });
  }
}

/** One layer's forwardAffine, to run beside other layers' (batchNormTogether). */
export interface BatchNormCall {
  layer: BatchNorm;
  input: Tensor;
  weight: Tensor | null;
  bias: Tensor | null;
}

/** Runs several layers' calls at once; one output per call, in order. */
export type BatchNormTogether = (calls: readonly BatchNormCall[]) => Tensor[];

/**
 * Several BatchNorm layers' forwardAffine, run together where their layers share a `together`
 * (data-parallel training's synchronised BatchNorm: one collective for all of them) and each on its
 * own otherwise. The outputs are those of each layer's forwardAffine either way.
 *
 * @example
 * const [a, b] = batchNormTogether([{ layer: bn1, input: x1, weight: bn1.weight, bias: bn1.bias }, { layer: bn2, ... }]);
 */
export function batchNormTogether(calls: readonly BatchNormCall[]): Tensor[] {
  const together = calls[0]?.layer.together;
  if (together && calls.every((call) => call.layer.together === together)) return together(calls);
  return calls.map((call) => call.layer.forwardAffine(call.input, call.weight, call.bias));
}

/**
 * Batch normalisation of [N, C] or [N, C, L] input over N (and L), as torch.nn.BatchNorm1d: the
 * normalisation in BYOL's projector and predictor MLPs.
 *
 * @example
 * const bn = new BatchNorm1d(4096);
 * bn.forward(randn([256, 4096])); // each feature: mean 0, variance 1 over the batch
 */
export class BatchNorm1d extends BatchNorm {
  protected override checkInputRank(shape: number[]): void {
    if (shape.length !== 2 && shape.length !== 3) {
      throw new RangeError(`BatchNorm1d: expected [N, C] or [N, C, L] input, got shape ${describeShape(shape)}`);
    }
  }
}

/**
 * Batch normalisation of [N, C, H, W] input over N, H and W, as torch.nn.BatchNorm2d.
 *
 * @example
 * const bn = new BatchNorm2d(64);
 * bn.eval().forward(randn([8, 64, 56, 56])); // uses running_mean and running_var
 */
export class BatchNorm2d extends BatchNorm {
  protected override checkInputRank(shape: number[]): void {
    if (shape.length !== 4) throw new RangeError(`BatchNorm2d: expected [N, C, H, W] input, got shape ${describeShape(shape)}`);
  }
}
