// Group normalisation (Wu & He, 2018), torch.nn.GroupNorm: each sample's channels split into
// groups, each group normalised over its channels and positions; batch-size independent.
import { F, ones, zeros, type Tensor } from '../engine/index.js';
import { Module } from './module.js';
import { ones_, zeros_ } from './init.js';
import { checkPositiveInt, describeShape } from './checks.js';

export interface GroupNormOptions {
  /** Added to the variance before the square root (default 1e-5). */
  eps?: number;
  /** Learns a per-channel scale (weight, 1 at first) and shift (bias, 0) (default true). */
  affine?: boolean;
}

/**
 * Normalises [N, C, ...] input in numGroups groups of C/numGroups channels, as torch.nn.GroupNorm.
 *
 * @example
 * const norm = new GroupNorm(32, 256);
 * norm.forward(randn([2, 256, 14, 14])).shape; // [2, 256, 14, 14]
 */
export class GroupNorm extends Module {
  readonly numGroups: number;
  readonly numChannels: number;
  readonly eps: number;
  readonly affine: boolean;

  constructor(numGroups: number, numChannels: number, options: GroupNormOptions = {}) {
    super();
    checkPositiveInt('GroupNorm', 'numGroups', numGroups);
    checkPositiveInt('GroupNorm', 'numChannels', numChannels);
    if (numChannels % numGroups !== 0) {
      throw new RangeError(`GroupNorm: numChannels (${numChannels}) must be divisible by numGroups (${numGroups})`);
    }
    this.numGroups = numGroups;
    this.numChannels = numChannels;
    this.eps = options.eps ?? 1e-5;
    this.affine = options.affine ?? true;
    this.registerParameter('weight', this.affine ? ones([numChannels]) : null);
    this.registerParameter('bias', this.affine ? zeros([numChannels]) : null);
  }

  get weight(): Tensor | null {
    return this.affine ? this.param('weight') : null;
  }
  get bias(): Tensor | null {
    return this.affine ? this.param('bias') : null;
  }

  /** Weight 1, bias 0. */
  resetParameters(): void {
    if (!this.affine) return;
    ones_(this.weight!);
    zeros_(this.bias!);
  }

  /** input [N, numChannels, ...] → same shape. */
  override forward(input: Tensor): Tensor {
    const shape = input.shape;
    if (shape.length < 2 || shape[1] !== this.numChannels) {
      throw new RangeError(
        `GroupNorm(${this.numGroups}, ${this.numChannels}): input has shape ${describeShape(shape)}, expected [N, ${this.numChannels}, ...]`,
      );
    }
    return F.groupNorm(input, this.numGroups, this.weight, this.bias, this.eps);
  }
}
