// The 2-D convolution layer, torch.nn.Conv2d.
import { F, zeros, type Generator, type Tensor } from '../engine/index.js';
import { Module } from './module.js';
import { defaultLayerInit_ } from './init.js';
import { checkPositiveInt, describeShape } from './checks.js';

/** One value for both spatial dims, or [height, width]. */
export type Size2d = number | [number, number];

export interface Conv2dOptions {
  stride?: Size2d;
  /** Zero padding added on both sides of each spatial dim. */
  padding?: Size2d;
  dilation?: Size2d;
  /** Splits channels into this many independent convolutions (inChannels for depthwise). */
  groups?: number;
  /** Adds a learned per-channel bias (default true). */
  bias?: boolean;
  /** Draws the initial weights from this generator instead of the global one. */
  generator?: Generator;
}

function pair(value: Size2d): [number, number] {
  return typeof value === 'number' ? [value, value] : value;
}

/**
 * 2-D convolution over [N, C, H, W] (or unbatched [C, H, W]) input, as torch.nn.Conv2d: weight
 * [out, in/groups, kh, kw] and bias [out], initialised like Linear with fan_in = in/groups·kh·kw.
 *
 * @example
 * const stem = new Conv2d(3, 64, 7, { stride: 2, padding: 3, bias: false });
 * stem.forward(randn([8, 3, 224, 224])).shape; // [8, 64, 112, 112]
 */
export class Conv2d extends Module {
  readonly inChannels: number;
  readonly outChannels: number;
  readonly kernelSize: [number, number];
  readonly stride: [number, number];
  readonly padding: [number, number];
  readonly dilation: [number, number];
  readonly groups: number;
  readonly hasBias: boolean;

  constructor(inChannels: number, outChannels: number, kernelSize: Size2d, options: Conv2dOptions = {}) {
    super();
    checkPositiveInt('Conv2d', 'inChannels', inChannels);
    checkPositiveInt('Conv2d', 'outChannels', outChannels);
    this.inChannels = inChannels;
    this.outChannels = outChannels;
    this.kernelSize = pair(kernelSize);
    this.stride = pair(options.stride ?? 1);
    this.padding = pair(options.padding ?? 0);
    this.dilation = pair(options.dilation ?? 1);
    this.groups = options.groups ?? 1;
    this.hasBias = options.bias ?? true;
    this.kernelSize.forEach((k) => checkPositiveInt('Conv2d', 'kernelSize', k));
    this.stride.forEach((s) => checkPositiveInt('Conv2d', 'stride', s));
    this.dilation.forEach((d) => checkPositiveInt('Conv2d', 'dilation', d));
    this.padding.forEach((p) => {
      if (!Number.isInteger(p) || p < 0) throw new RangeError(`Conv2d: padding must be a non-negative integer, got ${p}`);
    });
    checkPositiveInt('Conv2d', 'groups', this.groups);
    if (inChannels % this.groups !== 0 || outChannels % this.groups !== 0) {
      throw new RangeError(
        `Conv2d: inChannels (${inChannels}) and outChannels (${outChannels}) must both be divisible by groups (${this.groups})`,
      );
    }
    this.registerParameter('weight', zeros([outChannels, inChannels / this.groups, ...this.kernelSize]));
    this.registerParameter('bias', this.hasBias ? zeros([outChannels]) : null);
    this.resetParameters(options.generator);
  }

  get weight(): Tensor {
    return this.param('weight');
  }
  get bias(): Tensor | null {
    return this.hasBias ? this.param('bias') : null;
  }

  /** Redraws weight and bias with PyTorch's default initialisation. */
  resetParameters(generator?: Generator): void {
    defaultLayerInit_(this.weight, this.bias, { generator });
  }

  /** input [N, inChannels, H, W] → [N, outChannels, H', W']. */
  override forward(input: Tensor): Tensor {
    const shape = input.shape;
    const channelDim = shape.length - 3;
    if ((shape.length !== 4 && shape.length !== 3) || shape[channelDim] !== this.inChannels) {
      throw new RangeError(
        `Conv2d(${this.inChannels}, ${this.outChannels}): input has shape ${describeShape(shape)}, expected [N, ${this.inChannels}, H, W] or [${this.inChannels}, H, W]`,
      );
    }
    return F.conv2d(input, this.weight, this.bias, {
      stride: this.stride,
      padding: this.padding,
      dilation: this.dilation,
      groups: this.groups,
    });
  }
}
