// The Transformer encoder layer (Vaswani et al., 2017, §3.1), torch.nn.TransformerEncoderLayer:
// self-attention and a two-layer feed-forward block, each wrapped in a residual connection and
// LayerNorm, after the sum (post-LN, the paper) or before the block (pre-LN, normFirst). In eval
// without autograd a stack of layers can also run as PyTorch's fused inference kernel (encodeFused),
// as nn.TransformerEncoder's fast path does.
import { autocastState, isGradEnabled, op, tidy, type Generator, type Tensor } from '../engine/index.js';
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
  /** The activation's name when the fused kernel has it (relu or gelu), else null. */
  readonly #activationName: 'relu' | 'gelu' | null;

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
    const activation = options.activation ?? 'relu';
    this.#activation = resolveActivation(activation);
    this.#activationName = typeof activation === 'string' ? activation : null;
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

  /**
   * Why this layer cannot run as the fused inference kernel on `src` now, or null when it can: it
   * must be in eval mode, without autograd or autocast (the kernel has no backward), batch-first,
   * with a named activation, biases and LayerNorm weights, both LayerNorms of one eps, an even
   * number of heads, on float CPU tensors (PyTorch's checks, less CUDA: the case tested here).
   */
  fusedBlocker(src: Tensor): string | null {
    if (this.training) return 'training mode';
    if (isGradEnabled()) return 'autograd is on';
    if (autocastState('cpu').enabled) return 'autocast is on';
    if (!this.selfAttn.batchFirst) return 'not batchFirst';
    if (this.#activationName === null) return 'a custom activation';
    if (!this.selfAttn.hasBias) return 'attention without biases';
    if (this.linear1.bias === null || this.linear2.bias === null) return 'feed-forward without biases';
    if (this.norm1.weight === null || this.norm2.weight === null) return 'LayerNorm without weights';
    if (this.norm1.eps !== this.norm2.eps) return 'LayerNorms of different eps';
    if (this.selfAttn.numHeads % 2 === 1) return 'an odd number of heads';
    if (src.device !== 'cpu') return `input on ${src.device}`;
    if (src.dtype !== 'float32' && src.dtype !== 'float64') return `input of ${src.dtype}`;
    return null;
  }

  /**
   * What forward(src, { srcKeyPaddingMask }) answers in eval without autograd, as one fused op
   * (aten::_transformer_encoder_layer_fwd, PyTorch's fast path): src [batch, sequence, dModel], an
   * optional bool padding mask [batch, sequence]. Only where {@link fusedBlocker} is null. Padding
   * positions of the result hold values of no meaning, as the training path's do.
   */
  forwardFused(src: Tensor, keyPaddingMask: Tensor | null = null): Tensor {
    const attention = this.selfAttn;
    return encoderLayerFwd(
      src,
      attention.embedDim,
      attention.numHeads,
      attention.inProjWeight,
      attention.inProjBias,
      attention.outProj.weight,
      attention.outProj.bias,
      this.#activationName === 'gelu',
      this.normFirst,
      this.norm1.eps,
      this.norm1.weight,
      this.norm1.bias,
      this.norm2.weight,
      this.norm2.bias,
      this.linear1.weight,
      this.linear1.bias,
      this.linear2.weight,
      this.linear2.bias,
      keyPaddingMask,
      keyPaddingMask === null ? null : KEY_PADDING_MASK,
    );
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

const encoderLayerFwd = op('aten::_transformer_encoder_layer_fwd');
/** The kernel's mask_type for a [batch, sequence] key padding mask (0 would be [sequence, sequence]). */
const KEY_PADDING_MASK = 1;

/**
 * A stack of encoder layers over src [batch, sequence, dModel] with padding (keyPaddingMask
 * [batch, sequence], bool, true at padding), as their forward in eval without autograd answers,
 * through PyTorch's fused kernel (nn.TransformerEncoder's fast path for pre-LN layers: the padded
 * batch with the mask); or null where a layer cannot fuse ({@link TransformerEncoderLayer.fusedBlocker}).
 * Each row needs a token that is not padding. (PyTorch packs post-LN layers' rows into a nested
 * tensor first; measured on the icon captions, 45% of them padding, that gained nothing here, and
 * libtorch 1.13 warns on stderr at the first nested tensor.)
 *
 * @example
 * const out = noGrad(() => encodeFused(layers, x, ids.eq(0))) ?? layersForward(x); // [B, L, d]
 */
export function encodeFused(layers: readonly TransformerEncoderLayer[], src: Tensor, keyPaddingMask: Tensor): Tensor | null {
  if (src.ndim !== 3 || src.shape[0] === 0 || keyPaddingMask.dtype !== 'bool' || layers.some((layer) => layer.fusedBlocker(src) !== null))
    return null;
  return tidy(() => layers.reduce((x, layer) => layer.forwardFused(x, keyPaddingMask), src));
}

function resolveActivation(activation: Activation): (x: Tensor) => Tensor {
  if (typeof activation === 'function') return activation;
  if (activation === 'relu') return (x) => x.relu();
  if (activation === 'gelu') return (x) => x.gelu();
  throw new RangeError(`TransformerEncoderLayer: activation must be 'relu', 'gelu' or a function, got '${String(activation)}'`);
}
