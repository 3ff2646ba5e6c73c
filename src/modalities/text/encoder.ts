// The text encoder: a pre-LN Transformer over WordPiece ids, laid out as CLIP's text tower
// (Radford et al. 2021, arXiv:2103.00020, §2.4: token and learned positional embeddings, a stack of
// residual attention blocks, a final LayerNorm, one vector per text). It pools by the mean of the
// non-padding tokens (default) or takes the [CLS] token's vector, as BERT does (Devlin et al. 2019,
// arXiv:1810.04805). Pre-LN (Xiong et al. 2020, arXiv:2002.04745) trains stably without warm-up tricks.
import { cat, isGradEnabled, noGrad, tensor, tidy, zeros, type Generator, type Tensor } from '../../engine/index.js';
import { Dropout, Embedding, LayerNorm, Module, TransformerEncoderLayer, encodeFused, init } from '../../nn/index.js';
import { lengthGroups } from './length_groups.js';

/** How the token vectors become one vector per text. */
export type TextPooling = 'mean' | 'cls';

export interface TextTransformerOptions {
  /** Number of token ids; ids lie in [0, vocabSize) and 0 is padding. */
  vocabSize: number;
  /** Longest sequence, the number of learned positions. */
  maxLength: number;
  /** Width of every token vector and of the output (default 256). */
  dModel?: number;
  /** Encoder layers (default 4). */
  layers?: number;
  /** Attention heads; must divide dModel (default 4). */
  heads?: number;
  /** Hidden width of each feed-forward block (default 4·dModel). */
  dimFeedforward?: number;
  /** Dropout on the embeddings, the attention weights and inside each block (default 0.1). */
  dropout?: number;
  /** 'mean' over non-padding tokens, or the first ([CLS]) token (default 'mean'). */
  pooling?: TextPooling;
  /** Draws the initial weights from this generator instead of the global one. */
  generator?: Generator;
}

/**
 * int64 ids [N, L] (0 = padding, on the right; L ≤ maxLength) → [N, dModel]. Padding is masked out
 * of attention and of the mean, so appending padding does not change the output.
 *
 * @example
 * const encoder = new TextTransformer({ vocabSize: tokenizer.vocabSize, maxLength: 32 });
 * const { ids } = await tokenizer.encodeBatch(['a red car'], 32);
 * encoder.eval().forward(ids).shape; // [1, 256]
 */
export class TextTransformer extends Module {
  readonly vocabSize: number;
  readonly maxLength: number;
  readonly dModel: number;
  readonly pooling: TextPooling;
  readonly tokenEmbedding: Embedding;
  readonly embeddingDropout: Dropout;
  readonly layers: TransformerEncoderLayer[];
  readonly lnFinal: LayerNorm;
  /**
   * In eval without autograd, run the layers as PyTorch's fused kernel (encodeFused; the same
   * embeddings up to float rounding). False runs the training path's ops in eval too, as
   * benchmarks that compare the two do.
   */
  fusedInference = true;
  /**
   * In inference on the CPU, run a batch's rows in groups of similar length, each cut to its
   * longest row (length_groups.ts). False runs every batch whole, as benchmarks that compare the
   * two do. Not on other devices: measured on the CPU only, where a group's fixed cost is small.
   */
  groupLengths = true;

  constructor(options: TextTransformerOptions) {
    super();
    const { vocabSize, maxLength, dModel = 256, layers = 4, heads = 4, dropout = 0.1, pooling = 'mean', generator } = options;
    const dimFeedforward = options.dimFeedforward ?? 4 * dModel;
    for (const [name, value] of Object.entries({ vocabSize, maxLength, dModel, layers, heads, dimFeedforward })) {
      if (!Number.isInteger(value) || value <= 0) throw new RangeError(`TextTransformer: ${name} must be a positive integer, got ${value}`);
    }
    if (dModel % heads !== 0) throw new RangeError(`TextTransformer: heads (${heads}) must divide dModel (${dModel})`);
    if (pooling !== 'mean' && pooling !== 'cls')
      throw new RangeError(`TextTransformer: pooling must be 'mean' or 'cls', got '${String(pooling)}'`);
    this.vocabSize = vocabSize;
    this.maxLength = maxLength;
    this.dModel = dModel;
    this.pooling = pooling;

    this.tokenEmbedding = this.registerModule('token_embedding', new Embedding(vocabSize, dModel, { paddingIdx: 0, generator }));
    this.registerParameter('positional_embedding', zeros([maxLength, dModel]));
    // CLIP's initialisation: N(0, 0.02²) tokens, N(0, 0.01²) positions; the padding row stays zero.
    init.normal_(this.tokenEmbedding.weight, 0, 0.02, { generator });
    noGrad(() => this.tokenEmbedding.weight.select(0, 0).zero_());
    init.normal_(this.positionalEmbedding, 0, 0.01, { generator });
    this.embeddingDropout = this.registerModule('dropout', new Dropout(dropout));
    this.layers = Array.from({ length: layers }, (_, i) =>
      this.registerModule(
        `layers.${i}`,
        new TransformerEncoderLayer(dModel, heads, {
          dimFeedforward,
          dropout,
          activation: 'gelu',
          batchFirst: true,
          normFirst: true,
          generator,
        }),
      ),
    );
    this.lnFinal = this.registerModule('ln_final', new LayerNorm(dModel));
  }

  /** Learned positions, [maxLength, dModel]. */
  get positionalEmbedding(): Tensor {
    return this.param('positional_embedding');
  }

  /** Width of the output. */
  get featureDim(): number {
    return this.dModel;
  }

  /** The Transformer layers in order: the units that "all but the last N blocks" counts in (the embeddings come before, ln_final after). */
  blocks(): Module[] {
    return [...this.layers];
  }

  /** ids int64 [N, L] → [N, dModel]. Every row needs a non-padding first token ([CLS]). */
  override forward(ids: Tensor): Tensor {
    if ((ids.dtype !== 'int64' && ids.dtype !== 'int32') || ids.ndim !== 2) {
      throw new TypeError(`TextTransformer: ids must be an int64 tensor [N, L], got ${ids.dtype} [${ids.shape.join(', ')}]`);
    }
    const length = ids.shape[1]!;
    if (length < 1 || length > this.maxLength) {
      throw new RangeError(`TextTransformer: ids have length ${length}, must be between 1 and maxLength ${this.maxLength}`);
    }
    return tidy(() => {
      const padding = ids.eq(0); // [N, L], true at padding: the attention key mask
      // An all-padding row would attend to nothing and give NaN; with padding on the right, that is
      // a row whose first id is padding.
      if (ids.shape[0]! > 0 && padding.select(1, 0).any().item()) {
        throw new RangeError('TextTransformer: a row of ids is all padding (first id 0); encode texts with [CLS] first');
      }
      if (!this.groupLengths || this.training || isGradEnabled() || ids.device !== 'cpu' || ids.shape[0]! < 2)
        return this.#encode(ids, padding);
      // Inference: rows of similar length together, each group cut to its longest row (the same
      // vectors up to float rounding, as padding changes nothing; length_groups.ts says what it saves).
      const lengths = rowLengths(ids);
      const groups = lengthGroups(lengths);
      if (groups.length === 1 && Math.max(...lengths) === length) return this.#encode(ids, padding);
      const rowIndex = (rows: number[]): Tensor => tensor(rows, { dtype: 'int64', device: ids.device });
      const outputs = groups.map((rows) => {
        const group = ids.indexSelect(0, rowIndex(rows)).narrow(1, 0, lengths[rows.at(-1)!]!);
        return this.#encode(group, group.eq(0));
      });
      const position = new Array<number>(lengths.length);
      groups.flat().forEach((row, i) => (position[row] = i));
      return cat(outputs, 0).indexSelect(0, rowIndex(position));
    });
  }

  /** forward of ids whose rows each have a token that is not padding; `padding` is ids.eq(0). */
  #encode(ids: Tensor, padding: Tensor): Tensor {
    let x = this.tokenEmbedding.forward(ids).add(this.positionalEmbedding.narrow(0, 0, ids.shape[1]!));
    x = this.embeddingDropout.forward(x);
    const fused = this.fusedInference ? encodeFused(this.layers, x, padding) : null;
    if (fused !== null) x = fused;
    else for (const layer of this.layers) x = layer.forward(x, { srcKeyPaddingMask: padding });
    x = this.lnFinal.forward(x);
    if (this.pooling === 'cls') return x.select(1, 0);
    const real = padding.logicalNot().unsqueeze(2).to(x.dtype); // [N, L, 1]
    return x.mul(real).sum(1).div(real.sum(1));
  }
}

/** Each row's length up to its last token that is not padding (0). */
function rowLengths(ids: Tensor): number[] {
  const [rows, width] = ids.shape as [number, number];
  const values = ids.data();
  return Array.from({ length: rows }, (_, r) => {
    let end = width;
    while (end > 1 && Number(values[r * width + end - 1]) === 0) end--;
    return end;
  });
}
