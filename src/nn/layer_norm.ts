// Layer normalisation (Ba et al., 2016), torch.nn.LayerNorm: each sample normalised over its
// trailing dims, independent of the batch.
import { F, ones, zeros, type Tensor } from '../engine/index.js';
import { Module } from './module.js';
import { ones_, zeros_ } from './init.js';
import { checkPositiveInt, describeShape } from './checks.js';

export interface LayerNormOptions {
  /** Added to the variance before the square root (default 1e-5). */
  eps?: number;
  /** Learns an elementwise scale (weight, 1 at first) and shift (bias, 0) (default true). */
  elementwiseAffine?: boolean;
}

/**
 * Normalises over the last `normalizedShape.length` dims, as torch.nn.LayerNorm: weight and bias
 * have shape normalizedShape.
 *
 * @example
 * const norm = new LayerNorm(768);
 * norm.forward(randn([4, 16, 768])); // every [768] row: mean 0, variance 1, then scaled and shifted
 */
export class LayerNorm extends Module {
  readonly normalizedShape: number[];
  readonly eps: number;
  readonly elementwiseAffine: boolean;

  constructor(normalizedShape: number | number[], options: LayerNormOptions = {}) {
    super();
    this.normalizedShape = typeof normalizedShape === 'number' ? [normalizedShape] : normalizedShape.slice();
    this.normalizedShape.forEach((d) => checkPositiveInt('LayerNorm', 'normalizedShape', d));
    this.eps = options.eps ?? 1e-5;
    this.elementwiseAffine = options.elementwiseAffine ?? true;
    this.registerParameter('weight', this.elementwiseAffine ? ones(this.normalizedShape) : null);
    this.registerParameter('bias', this.elementwiseAffine ? zeros(this.normalizedShape) : null);
  }

  get weight(): Tensor | null {
    return this.elementwiseAffine ? this.param('weight') : null;
  }
  get bias(): Tensor | null {
    return this.elementwiseAffine ? this.param('bias') : null;
  }

  /** Weight 1, bias 0. */
  resetParameters(): void {
    if (!this.elementwiseAffine) return;
    ones_(this.weight!);
    zeros_(this.bias!);
  }

  /** input [..., ...normalizedShape] → same shape. */
  override forward(input: Tensor): Tensor {
    const shape = input.shape;
    const trailing = shape.slice(shape.length - this.normalizedShape.length);
    if (shape.length < this.normalizedShape.length || trailing.some((d, i) => d !== this.normalizedShape[i])) {
      throw new RangeError(
        `LayerNorm(${describeShape(this.normalizedShape)}): input has shape ${describeShape(shape)}, its last dims must be ${describeShape(this.normalizedShape)}`,
      );
    }
    return F.layerNorm(input, this.normalizedShape, this.weight, this.bias, this.eps);
  }
}
