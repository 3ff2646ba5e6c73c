// The lookup table, torch.nn.Embedding: integer ids → learned vectors.
import { F, noGrad, zeros, type Generator, type Tensor } from '../engine/index.js';
import { Module } from './module.js';
import { normal_ } from './init.js';
import { checkPositiveInt, describeShape } from './checks.js';

export interface EmbeddingOptions {
  /**
   * The id of padding tokens: its row starts at zero and gets no gradient, so padding stays a zero
   * vector. Negative values count from the end, as in PyTorch.
   */
  paddingIdx?: number;
  /** Draws the initial weights from this generator instead of the global one. */
  generator?: Generator;
}

/**
 * A [numEmbeddings, embeddingDim] table whose rows are picked by integer ids, as
 * torch.nn.Embedding; rows start N(0, 1).
 *
 * @example
 * const tokens = new Embedding(30522, 256, { paddingIdx: 0 });
 * tokens.forward(tensor([[101, 2023, 0]], { dtype: 'int64' })).shape; // [1, 3, 256]
 */
export class Embedding extends Module {
  readonly numEmbeddings: number;
  readonly embeddingDim: number;
  /** The padding row, normalised to 0 ≤ paddingIdx < numEmbeddings; null when there is none. */
  readonly paddingIdx: number | null;

  constructor(numEmbeddings: number, embeddingDim: number, options: EmbeddingOptions = {}) {
    super();
    checkPositiveInt('Embedding', 'numEmbeddings', numEmbeddings);
    checkPositiveInt('Embedding', 'embeddingDim', embeddingDim);
    this.numEmbeddings = numEmbeddings;
    this.embeddingDim = embeddingDim;
    const padding = options.paddingIdx;
    if (padding !== undefined && (!Number.isInteger(padding) || padding >= numEmbeddings || padding < -numEmbeddings)) {
      throw new RangeError(`Embedding: paddingIdx must be an integer in [${-numEmbeddings}, ${numEmbeddings}), got ${padding}`);
    }
    this.paddingIdx = padding === undefined ? null : padding < 0 ? padding + numEmbeddings : padding;
    this.registerParameter('weight', zeros([numEmbeddings, embeddingDim]));
    this.resetParameters(options.generator);
  }

  get weight(): Tensor {
    return this.param('weight');
  }

  /** Redraws the rows from N(0, 1) and zeroes the padding row. */
  resetParameters(generator?: Generator): void {
    normal_(this.weight, 0, 1, { generator });
    const padding = this.paddingIdx;
    if (padding !== null) noGrad(() => this.weight.select(0, padding).zero_());
  }

  /** ids (int64 or int32, any shape) → [...ids.shape, embeddingDim]. */
  override forward(ids: Tensor): Tensor {
    if (ids.dtype !== 'int64' && ids.dtype !== 'int32') {
      throw new TypeError(`Embedding: ids must be an int64 or int32 tensor, got ${ids.dtype} of shape ${describeShape(ids.shape)}`);
    }
    return F.embedding(ids, this.weight, this.paddingIdx ?? -1);
  }
}
