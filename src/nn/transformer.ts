// The Transformer encoder layer (Vaswani et al., 2017, §3.1), torch.nn.TransformerEncoderLayer:
// self-attention and a two-layer feed-forward block, each wrapped in a residual connection and
// LayerNorm, after the sum (post-LN, the paper) or before the block (pre-LN, normFirst).
import { tidy, type Generator, type Tensor } from '../engine/index.js';
import { Module } from './module.js';
import { Linear } from './linear.js';
import { LayerNorm } from './layer_norm.js';
import { Dropout } from './dropout.js';
import { MultiheadAttention } from './attention.js';
import { checkPositiveInt } from './checks.js';

/** The feed-forward block's activation: a name PyTorch accepts, or any tensor function. */
export type Activation = 'relu' | 'gelu' | ((x: Tensor) => Tensor);

export interface TransformerEncoderLayerOptions {
  /** Width of the feed-forward block's hidden layer (default 2048). */
  dimFeedforward?: number;
  /** Dropout on attention weights, after each block and inside the feed-forward block (default 0.1). */
  dropout?: number;
  /** Default 'relu'. */
  activation?: Activation;
  /** The LayerNorms' eps (default 1e-5). */
  layerNormEps?: number;
  /** Input and output are [batch, sequence, dModel] instead of [sequence, batch, dModel] (default false). */
  batchFirst?: boolean;
  /** Pre-LN: normalise before each block instead of after each residual sum (default false). */
  normFirst?: boolean;
  /** Draws the initial weights from this generator instead of the global one. */
  generator?: Generator;
}

export interface TransformerEncoderLayerMasks {
  /** Attention mask, [sequence, sequence] or [batch·nhead, sequence, sequence]; see MultiheadAttention. */
  srcMask?: Tensor | null;
  /** Padding positions, [batch, sequence]: true marks padding; see MultiheadAttention. */
  srcKeyPaddingMask?: Tensor | null;
}

/**
 * One encoder layer with PyTorch's submodule names (self_attn, linear1, linear2, norm1, norm2), so
 * its state dict matches torch.nn.TransformerEncoderLayer's:
 *   post-LN: x = norm1(x + SA(x));        x = norm2(x + FF(x))
 *   pre-LN:  x = x + SA(norm1(x));        x = x + FF(norm2(x))
 * where FF(x) = linear2(dropout(activation(linear1(x)))).
 *
 * @example
 * const layer = new TransformerEncoderLayer(256, 8, { dimFeedforward: 1024, batchFirst: true, normFirst: true });
 * layer.forward(tokens, { srcKeyPaddingMask: padding }).shape; // [B, L, 256]
 */
export class TransformerEncoderLayer extends Module {
  readonly normFirst: boolean;
  readonly selfAttn: MultiheadAttention;
  readonly linear1: Linear;
  readonly dropout: Dropout;
  readonly linear2: Linear;
  readonly norm1: LayerNorm;
  readonly norm2: LayerNorm;
  readonly dropout1: Dropout;
  readonly dropout2: Dropout;
  readonly #activation: (x: Tensor) => Tensor;

  constructor(dModel: number, nhead: number, options: TransformerEncoderLayerOptions = {}) {
    super();
    const dimFeedforward = options.dimFeedforward ?? 2048;
    checkPositiveInt('TransformerEncoderLayer', 'dimFeedforward', dimFeedforward);
    const p = options.dropout ?? 0.1;
    const eps = options.layerNormEps ?? 1e-5;
    const generator = options.generator;
    this.normFirst = options.normFirst ?? false;
    // Registration order is PyTorch's, which fixes both the state dict order and the order of
    // random draws at initialisation.
    this.selfAttn = this.registerModule(
      'self_attn',
      new MultiheadAttention(dModel, nhead, { dropout: p, batchFirst: options.batchFirst, generator }),
    );
    this.linear1 = this.registerModule('linear1', new Linear(dModel, dimFeedforward, { generator }));
    this.dropout = this.registerModule('dropout', new Dropout(p));
    this.linear2 = this.registerModule('linear2', new Linear(dimFeedforward, dModel, { generator }));
    this.norm1 = this.registerModule('norm1', new LayerNorm(dModel, { eps }));
    this.norm2 = this.registerModule('norm2', new LayerNorm(dModel, { eps }));
    this.dropout1 = this.registerModule('dropout1', new Dropout(p));
    this.dropout2 = this.registerModule('dropout2', new Dropout(p));
    this.#activation = resolveActivation(options.activation ?? 'relu');
  }

  /** src [sequence, batch, dModel] (batchFirst: [batch, sequence, dModel]) → same shape. */
  override forward(src: Tensor, masks: TransformerEncoderLayerMasks = {}): Tensor {
    return tidy(() => {
      let x = src;
      if (this.normFirst) {
        x = x.add(this.#selfAttentionBlock(this.norm1.forward(x), masks));
        x = x.add(this.#feedForwardBlock(this.norm2.forward(x)));
      } else {
        x = this.norm1.forward(x.add(this.#selfAttentionBlock(x, masks)));
        x = this.norm2.forward(x.add(this.#feedForwardBlock(x)));
      }
      return x;
    });
  }

  #selfAttentionBlock(x: Tensor, masks: TransformerEncoderLayerMasks): Tensor {
    const attended = this.selfAttn.forward(x, x, x, { attnMask: masks.srcMask, keyPaddingMask: masks.srcKeyPaddingMask });
    return this.dropout1.forward(attended);
  }

  #feedForwardBlock(x: Tensor): Tensor {
    const hidden = this.dropout.forward(this.#activation(this.linear1.forward(x)));
    return this.dropout2.forward(this.linear2.forward(hidden));
  }
}

function resolveActivation(activation: Activation): (x: Tensor) => Tensor {
  if (typeof activation === 'function') return activation;
  if (activation === 'relu') return (x) => x.relu();
  if (activation === 'gelu') return (x) => x.gelu();
  throw new RangeError(`TransformerEncoderLayer: activation must be 'relu', 'gelu' or a function, got '${String(activation)}'`);
}
