// The fully connected layer, torch.nn.Linear.
import { F, zeros, type Generator, type Tensor } from '../engine/index.js';
import { Module } from './module.js';
import { defaultLayerInit_ } from './init.js';
import { checkPositiveInt, describeShape } from './checks.js';

export interface LinearOptions {
  /** Adds a learned bias (default true). */
  bias?: boolean;
  /** Draws the initial weights from this generator instead of the global one. */
  generator?: Generator;
}

/**
 * y = x Wᵀ + b over the last dim, as torch.nn.Linear: weight [out, in], bias [out], both
 * U(−1/√in, 1/√in) at first (PyTorch's kaiming_uniform with a = √5).
 *
 * @example
 * const fc = new Linear(512, 128);
 * fc.forward(randn([32, 512])).shape; // [32, 128]
 */
export class Linear extends Module {
  readonly inFeatures: number;
  readonly outFeatures: number;
  readonly hasBias: boolean;

  constructor(inFeatures: number, outFeatures: number, options: LinearOptions = {}) {
    super();
    checkPositiveInt('Linear', 'inFeatures', inFeatures);
    checkPositiveInt('Linear', 'outFeatures', outFeatures);
    this.inFeatures = inFeatures;
    this.outFeatures = outFeatures;
    this.hasBias = options.bias ?? true;
    this.registerParameter('weight', zeros([outFeatures, inFeatures]));
    this.registerParameter('bias', this.hasBias ? zeros([outFeatures]) : null);
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

  /** input [..., inFeatures] → [..., outFeatures]. */
  override forward(input: Tensor): Tensor {
    const shape = input.shape;
    if (shape.length === 0 || shape[shape.length - 1] !== this.inFeatures) {
      throw new RangeError(
        `Linear(${this.inFeatures}, ${this.outFeatures}): input has shape ${describeShape(shape)}, its last dim must be ${this.inFeatures}`,
      );
    }
    return F.linear(input, this.weight, this.bias);
  }
}
