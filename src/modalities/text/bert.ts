// BERT (Devlin et al. 2019, arXiv:1810.04805) as a text tower, for weights trained elsewhere: BERT
// itself, MiniLM (all-MiniLM-L6-v2) and the other checkpoints of the same layout. The module tree
// and its names are Hugging Face transformers' BertModel's (embeddings.word_embeddings,
// encoder.layer.N.attention.self.query, …), so that model's state dict loads key for key
// (pretrained.ts), and its arithmetic is BertModel's in eval mode: post-LN layers, exact GELU,
// absolute positions, token type 0 for a single text.
import { tidy, zeros, type Tensor } from '../../engine/index.js';
import { Dropout, Embedding, LayerNorm, Linear, Module } from '../../nn/index.js';
import type { TextPooling } from './encoder.js';

/** The fields of a Hugging Face BertConfig (config.json) that fix the architecture. */
export interface BertConfig {
  vocabSize: number;
  hiddenSize: number;
  numHiddenLayers: number;
  numAttentionHeads: number;
  intermediateSize: number;
  maxPositionEmbeddings: number;
  typeVocabSize: number;
  layerNormEps: number;
  hiddenDropoutProb: number;
  attentionProbsDropoutProb: number;
  /** The row of word_embeddings that gets no gradient (transformers' padding_idx). */
  padTokenId: number;
}

/** A config.json that does not describe a BERT this module can build; the message names the file and field. */
export class BertConfigError extends Error {
  override readonly name = 'BertConfigError';
}

/**
 * A BertConfig from the JSON of a Hugging Face config.json, every field checked; errors name
 * `source` and the field.
 *
 * @example
 * const config = bertConfig(JSON.parse(readFileSync('all-MiniLM-L6-v2/config.json', 'utf8')), 'config.json');
 * config.hiddenSize; // 384
 */
export function bertConfig(json: unknown, source: string): BertConfig {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new BertConfigError(`${source}: expected a JSON object (a Hugging Face BertConfig), got ${JSON.stringify(json)}`);
  }
  const raw = json as Record<string, unknown>;
  const field = (name: string, fallback: number | undefined, check: (v: number) => boolean, what: string): number => {
    const value = raw[name] ?? fallback;
    if (value === undefined) throw new BertConfigError(`${source}: ${name} is missing; a BertConfig needs it`);
    if (typeof value !== 'number' || !check(value)) {
      throw new BertConfigError(`${source}: ${name} must be ${what}, got ${JSON.stringify(value)}`);
    }
    return value;
  };
  const positive = (v: number): boolean => Number.isInteger(v) && v > 0;
  const probability = (v: number): boolean => v >= 0 && v <= 1;
  // Another model_type may share the names but not the arithmetic (RoBERTa offsets its positions).
  if (raw.model_type !== undefined && raw.model_type !== 'bert') {
    throw new BertConfigError(
      `${source}: model_type is ${JSON.stringify(raw.model_type)}; only 'bert' models (BERT, MiniLM) are supported`,
    );
  }
  if (raw.hidden_act !== undefined && raw.hidden_act !== 'gelu') {
    throw new BertConfigError(`${source}: hidden_act is ${JSON.stringify(raw.hidden_act)}; only 'gelu' (exact, BERT's) is supported`);
  }
  if (raw.position_embedding_type !== undefined && raw.position_embedding_type !== 'absolute') {
    throw new BertConfigError(
      `${source}: position_embedding_type is ${JSON.stringify(raw.position_embedding_type)}; only 'absolute' is supported`,
    );
  }
  const config: BertConfig = {
    vocabSize: field('vocab_size', undefined, positive, 'a positive integer'),
    hiddenSize: field('hidden_size', undefined, positive, 'a positive integer'),
    numHiddenLayers: field('num_hidden_layers', undefined, positive, 'a positive integer'),
    numAttentionHeads: field('num_attention_heads', undefined, positive, 'a positive integer'),
    intermediateSize: field('intermediate_size', undefined, positive, 'a positive integer'),
    maxPositionEmbeddings: field('max_position_embeddings', undefined, positive, 'a positive integer'),
    // transformers' BertConfig defaults for the rest.
    typeVocabSize: field('type_vocab_size', 2, positive, 'a positive integer'),
    layerNormEps: field('layer_norm_eps', 1e-12, (v) => v > 0, 'a positive number'),
    hiddenDropoutProb: field('hidden_dropout_prob', 0.1, probability, 'a probability in [0, 1]'),
    attentionProbsDropoutProb: field('attention_probs_dropout_prob', 0.1, probability, 'a probability in [0, 1]'),
    padTokenId: field('pad_token_id', 0, (v) => Number.isInteger(v) && v >= 0, 'a non-negative integer'),
  };
  if (config.hiddenSize % config.numAttentionHeads !== 0) {
    throw new BertConfigError(
      `${source}: num_attention_heads (${config.numAttentionHeads}) must divide hidden_size (${config.hiddenSize})`,
    );
  }
  if (config.padTokenId >= config.vocabSize) {
    throw new BertConfigError(`${source}: pad_token_id ${config.padTokenId} is not below vocab_size ${config.vocabSize}`);
  }
  return config;
}

/** The config in config.json's names, as {@link bertConfig} reads it back (what a checkpoint keeps). */
export function bertConfigJSON(config: BertConfig): Record<string, number | string> {
  return {
    model_type: 'bert',
    hidden_act: 'gelu',
    vocab_size: config.vocabSize,
    hidden_size: config.hiddenSize,
    num_hidden_layers: config.numHiddenLayers,
    num_attention_heads: config.numAttentionHeads,
    intermediate_size: config.intermediateSize,
    max_position_embeddings: config.maxPositionEmbeddings,
    type_vocab_size: config.typeVocabSize,
    layer_norm_eps: config.layerNormEps,
    hidden_dropout_prob: config.hiddenDropoutProb,
    attention_probs_dropout_prob: config.attentionProbsDropoutProb,
    pad_token_id: config.padTokenId,
  };
}

/** Word + position + token-type (0) embeddings, then LayerNorm and dropout. */
class BertEmbeddings extends Module {
  readonly wordEmbeddings: Embedding;
  readonly positionEmbeddings: Embedding;
  readonly tokenTypeEmbeddings: Embedding;
  readonly layerNorm: LayerNorm;
  readonly dropout: Dropout;

  constructor(c: BertConfig) {
    super();
    this.wordEmbeddings = this.registerModule('word_embeddings', new Embedding(c.vocabSize, c.hiddenSize, { paddingIdx: c.padTokenId }));
    this.positionEmbeddings = this.registerModule('position_embeddings', new Embedding(c.maxPositionEmbeddings, c.hiddenSize));
    this.tokenTypeEmbeddings = this.registerModule('token_type_embeddings', new Embedding(c.typeVocabSize, c.hiddenSize));
    this.layerNorm = this.registerModule('LayerNorm', new LayerNorm(c.hiddenSize, { eps: c.layerNormEps }));
    this.dropout = this.registerModule('dropout', new Dropout(c.hiddenDropoutProb));
  }

  override forward(ids: Tensor): Tensor {
    return tidy(() => {
      const length = ids.shape[1]!;
      // BertModel's order of additions: words + token types, then + positions.
      const x = this.wordEmbeddings
        .forward(ids)
        .add(this.tokenTypeEmbeddings.weight.select(0, 0))
        .add(this.positionEmbeddings.weight.narrow(0, 0, length));
      return this.dropout.forward(this.layerNorm.forward(x));
    });
  }
}

/** Scaled dot-product self-attention in numAttentionHeads heads, with separate query, key and value projections. */
class BertSelfAttention extends Module {
  readonly heads: number;
  readonly headSize: number;
  readonly query: Linear;
  readonly key: Linear;
  readonly value: Linear;
  readonly dropout: Dropout;

  constructor(c: BertConfig) {
    super();
    this.heads = c.numAttentionHeads;
    this.headSize = c.hiddenSize / c.numAttentionHeads;
    this.query = this.registerModule('query', new Linear(c.hiddenSize, c.hiddenSize));
    this.key = this.registerModule('key', new Linear(c.hiddenSize, c.hiddenSize));
    this.value = this.registerModule('value', new Linear(c.hiddenSize, c.hiddenSize));
    this.dropout = this.registerModule('dropout', new Dropout(c.attentionProbsDropoutProb));
  }

  /** x [N, L, H], additiveMask [N, 1, 1, L] (0 or −∞) → [N, L, H]. */
  override forward(x: Tensor, additiveMask: Tensor): Tensor {
    return tidy(() => {
      const [n, length, hidden] = x.shape as [number, number, number];
      const split = (t: Tensor): Tensor => t.reshape(n, length, this.heads, this.headSize).permute(0, 2, 1, 3);
      const [q, k, v] = [split(this.query.forward(x)), split(this.key.forward(x)), split(this.value.forward(x))];
      const scores = q.matmul(k.transpose(-1, -2)).div(Math.sqrt(this.headSize)).add(additiveMask);
      const context = this.dropout.forward(scores.softmax(-1)).matmul(v); // [N, heads, L, headSize]
      return context.permute(0, 2, 1, 3).reshape(n, length, hidden);
    });
  }
}

/** dense → dropout → LayerNorm(· + residual): the post-LN residual step after attention and after the feed-forward block. */
class BertResidualOutput extends Module {
  readonly dense: Linear;
  readonly layerNorm: LayerNorm;
  readonly dropout: Dropout;

  constructor(inFeatures: number, c: BertConfig) {
    super();
    this.dense = this.registerModule('dense', new Linear(inFeatures, c.hiddenSize));
    this.layerNorm = this.registerModule('LayerNorm', new LayerNorm(c.hiddenSize, { eps: c.layerNormEps }));
    this.dropout = this.registerModule('dropout', new Dropout(c.hiddenDropoutProb));
  }

  override forward(hidden: Tensor, residual: Tensor): Tensor {
    return tidy(() => this.layerNorm.forward(this.dropout.forward(this.dense.forward(hidden)).add(residual)));
  }
}

/** BertAttention: self-attention then its output step (keys attention.self.*, attention.output.*). */
class BertAttention extends Module {
  readonly self: BertSelfAttention;
  readonly output: BertResidualOutput;

  constructor(c: BertConfig) {
    super();
    this.self = this.registerModule('self', new BertSelfAttention(c));
    this.output = this.registerModule('output', new BertResidualOutput(c.hiddenSize, c));
  }

  override forward(x: Tensor, additiveMask: Tensor): Tensor {
    return tidy(() => this.output.forward(this.self.forward(x, additiveMask), x));
  }
}

/** One encoder layer: attention, then GELU(intermediate.dense) and its output step. */
class BertLayer extends Module {
  readonly attention: BertAttention;
  readonly intermediate: Linear;
  readonly output: BertResidualOutput;

  constructor(c: BertConfig) {
    super();
    this.attention = this.registerModule('attention', new BertAttention(c));
    // Registered under 'intermediate.dense': transformers wraps this Linear in a module of its own.
    this.intermediate = this.registerModule('intermediate.dense', new Linear(c.hiddenSize, c.intermediateSize));
    this.output = this.registerModule('output', new BertResidualOutput(c.intermediateSize, c));
  }

  override forward(x: Tensor, additiveMask: Tensor): Tensor {
    return tidy(() => {
      const attended = this.attention.forward(x, additiveMask);
      return this.output.forward(this.intermediate.forward(attended).gelu(), attended);
    });
  }
}

export interface BertEncoderOptions {
  /** 'mean' over the tokens (padding left out), or the [CLS] token's vector (default 'mean'). */
  pooling?: TextPooling;
  /** The id of [PAD] in the tokenizer: where the ids hold it, attention and the mean leave the position out (default 0). */
  padId?: number;
}

/**
 * int64 ids [N, L] (padding on the right, L ≤ maxPositionEmbeddings) → [N, hiddenSize]: BertModel's
 * last hidden states, pooled by the mean of the tokens (what sentence-transformers does for
 * all-MiniLM-L6-v2) or taken at [CLS]. The pooler (pooler.dense) is not part of it.
 *
 * @example
 * const encoder = new BertEncoder(bertConfig(json, 'config.json'), { pooling: 'mean' });
 * loadBertWeights(encoder, 'all-MiniLM-L6-v2/model.safetensors');
 * encoder.eval().forward(ids).shape; // [N, 384]
 */
export class BertEncoder extends Module {
  readonly config: Readonly<BertConfig>;
  readonly pooling: TextPooling;
  readonly padId: number;
  readonly embeddings: BertEmbeddings;
  readonly layers: BertLayer[];

  constructor(config: BertConfig, options: BertEncoderOptions = {}) {
    super();
    const { pooling = 'mean', padId = 0 } = options;
    if (pooling !== 'mean' && pooling !== 'cls')
      throw new RangeError(`BertEncoder: pooling must be 'mean' or 'cls', got '${String(pooling)}'`);
    this.config = Object.freeze({ ...config });
    this.pooling = pooling;
    this.padId = padId;
    this.embeddings = this.registerModule('embeddings', new BertEmbeddings(config));
    this.layers = Array.from({ length: config.numHiddenLayers }, (_, i) =>
      this.registerModule(`encoder.layer.${i}`, new BertLayer(config)),
    );
  }

  /** Width of the output. */
  get featureDim(): number {
    return this.config.hiddenSize;
  }

  /** The stages input to output: the embeddings, then each layer (for freezing all but the last N). */
  blocks(): Module[] {
    return [this.embeddings, ...this.layers];
  }

  /** ids int64 [N, L] → every token's last hidden state, [N, L, hiddenSize]. */
  hiddenStates(ids: Tensor): Tensor {
    this.#checkIds(ids);
    return tidy(() => {
      const [n, length] = ids.shape as [number, number];
      const padding = ids.eq(this.padId);
      // −∞ rather than transformers' float minimum: the same softmax, and the first token is never padding.
      const additiveMask = zeros([n, 1, 1, length], { device: ids.device }).maskedFill(padding.reshape(n, 1, 1, length), -Infinity);
      let x = this.embeddings.forward(ids);
      for (const layer of this.layers) x = layer.forward(x, additiveMask);
      return x;
    });
  }

  /** ids int64 [N, L] → [N, hiddenSize], pooled. */
  override forward(ids: Tensor): Tensor {
    return tidy(() => {
      const hidden = this.hiddenStates(ids);
      if (this.pooling === 'cls') return hidden.select(1, 0);
      const real = ids.ne(this.padId).unsqueeze(2).to(hidden.dtype); // [N, L, 1]
      return hidden.mul(real).sum(1).div(real.sum(1));
    });
  }

  #checkIds(ids: Tensor): void {
    if ((ids.dtype !== 'int64' && ids.dtype !== 'int32') || ids.ndim !== 2) {
      throw new TypeError(`BertEncoder: ids must be an int64 tensor [N, L], got ${ids.dtype} [${ids.shape.join(', ')}]`);
    }
    const length = ids.shape[1]!;
    if (length < 1 || length > this.config.maxPositionEmbeddings) {
      throw new RangeError(
        `BertEncoder: ids have length ${length}, must be between 1 and max_position_embeddings ${this.config.maxPositionEmbeddings}`,
      );
    }
    // An all-padding row would attend to nothing and give NaN; with padding on the right, that is a row whose first id is padding.
    if (ids.shape[0]! > 0 && tidy(() => ids.select(1, 0).eq(this.padId).any().item())) {
      throw new RangeError('BertEncoder: a row of ids is all padding (first id is [PAD]); encode texts with [CLS] first');
    }
  }
}
