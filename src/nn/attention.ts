// Multi-head attention (Vaswani et al., 2017, §3.2), torch.nn.MultiheadAttention: the same packed
// parameters (in_proj_weight [3E, E] holds W_q, W_k, W_v stacked), the same initialisation and the
// same arithmetic, so PyTorch checkpoints load and give the same outputs.
import { F, tidy, zeros, zerosLike, type Generator, type Tensor } from '../engine/index.js';
import { Module } from './module.js';
import { Linear } from './linear.js';
import { xavierUniform_, zeros_ } from './init.js';
import { checkPositiveInt, checkProbability, describeShape } from './checks.js';

export interface MultiheadAttentionOptions {
  /** Dropout on the attention weights, in training only (default 0). */
  dropout?: number;
  /** Biases on the input and output projections (default true). */
  bias?: boolean;
  /** Inputs and output are [batch, sequence, embed] instead of PyTorch's default [sequence, batch, embed]. */
  batchFirst?: boolean;
  /** Draws the initial weights from this generator instead of the global one. */
  generator?: Generator;
}

export interface AttentionMasks {
  /**
   * Keys to ignore, [batch, keys] ([keys] for unbatched input): true (bool) or nonzero (uint8)
   * marks padding; a float mask is added to the attention scores instead.
   */
  keyPaddingMask?: Tensor | null;
  /**
   * Which query may attend to which key, [queries, keys] or [batch·numHeads, queries, keys]:
   * true (bool) forbids; a float mask is added to the scores (−∞ forbids).
   */
  attnMask?: Tensor | null;
}

export interface AttentionForwardOptions extends AttentionMasks {
  /** Also return the attention weights (default false). */
  needWeights?: boolean;
  /** Average the returned weights over heads ([batch, queries, keys]) or keep them per head ([batch, heads, queries, keys]); default true. */
  averageAttnWeights?: boolean;
}

/** The attention output and, per query, its weights over the keys. */
export interface AttentionWithWeights {
  output: Tensor;
  weights: Tensor;
}

/**
 * softmax(Q Kᵀ/√d + mask) V in numHeads heads of d = embedDim/numHeads, with learned input and
 * output projections. Inputs are [queries, batch, embedDim] (batchFirst: [batch, queries, embedDim])
 * or unbatched [queries, embedDim]. A query whose keys are all masked gets NaN, as in PyTorch.
 *
 * @example
 * const attention = new MultiheadAttention(256, 8, { batchFirst: true });
 * const out = attention.forward(x, x, x, { keyPaddingMask: padding });                // [B, L, 256]
 * const { weights } = attention.forward(x, x, x, { needWeights: true });            // [B, L, L]
 */
export class MultiheadAttention extends Module {
  readonly embedDim: number;
  readonly numHeads: number;
  readonly headDim: number;
  readonly dropout: number;
  readonly batchFirst: boolean;
  readonly hasBias: boolean;
  /** The output projection, registered as 'out_proj' (keys out_proj.weight, out_proj.bias). */
  readonly outProj: Linear;

  constructor(embedDim: number, numHeads: number, options: MultiheadAttentionOptions = {}) {
    super();
    checkPositiveInt('MultiheadAttention', 'embedDim', embedDim);
    checkPositiveInt('MultiheadAttention', 'numHeads', numHeads);
    if (embedDim % numHeads !== 0) {
      throw new RangeError(`MultiheadAttention: embedDim (${embedDim}) must be divisible by numHeads (${numHeads})`);
    }
    this.dropout = options.dropout ?? 0;
    checkProbability('MultiheadAttention', 'dropout', this.dropout);
    this.embedDim = embedDim;
    this.numHeads = numHeads;
    this.headDim = embedDim / numHeads;
    this.batchFirst = options.batchFirst ?? false;
    this.hasBias = options.bias ?? true;
    this.registerParameter('in_proj_weight', zeros([3 * embedDim, embedDim]));
    this.registerParameter('in_proj_bias', this.hasBias ? zeros([3 * embedDim]) : null);
    // Built (and so drawn) before the input projection is initialised: PyTorch's order, which
    // makes seeded initialisations agree.
    this.outProj = this.registerModule('out_proj', new Linear(embedDim, embedDim, { bias: this.hasBias, generator: options.generator }));
    this.#resetInputProjection(options.generator);
  }

  /** [W_q; W_k; W_v], [3·embedDim, embedDim]. */
  get inProjWeight(): Tensor {
    return this.param('in_proj_weight');
  }
  /** [b_q; b_k; b_v], [3·embedDim]. */
  get inProjBias(): Tensor | null {
    return this.hasBias ? this.param('in_proj_bias') : null;
  }

  /** Redraws every parameter as the constructor does. */
  resetParameters(generator?: Generator): void {
    this.outProj.resetParameters(generator);
    this.#resetInputProjection(generator);
  }

  #resetInputProjection(generator?: Generator): void {
    // PyTorch: Xavier for the packed projection, zero biases (out_proj's weight keeps Linear's init).
    xavierUniform_(this.inProjWeight, { generator });
    if (this.hasBias) {
      zeros_(this.inProjBias!);
      zeros_(this.outProj.bias!);
    }
  }

  override forward(query: Tensor, key: Tensor, value: Tensor, options?: AttentionForwardOptions & { needWeights?: false }): Tensor;
  override forward(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    options: AttentionForwardOptions & { needWeights: true },
  ): AttentionWithWeights;
  override forward(query: Tensor, key: Tensor, value: Tensor, options: AttentionForwardOptions): Tensor | AttentionWithWeights;
  override forward(query: Tensor, key: Tensor, value: Tensor, options: AttentionForwardOptions = {}): Tensor | AttentionWithWeights {
    if (key === undefined || value === undefined) {
      throw new TypeError(
        'MultiheadAttention.forward(query, key, value): key and value are required (pass x three times for self-attention)',
      );
    }
    return tidy(() => {
      const isSelfAttention = query === key && key === value;
      const batched = this.#checkInputs(query, key, value);
      // Internally [sequence, batch, embed], PyTorch's layout.
      const toInternal = (x: Tensor): Tensor => (!batched ? x.unsqueeze(1) : this.batchFirst ? x.transpose(0, 1) : x);
      const q = toInternal(query);
      const k = toInternal(key);
      const v = toInternal(value);
      const [queries, batch] = q.shape as [number, number, number];
      const keys = k.shape[0]!;

      const [qProjected, kProjected, vProjected] = this.#projectInputs(q, k, v, isSelfAttention);
      // [len, batch, E] → [batch·heads, len, headDim]
      const splitHeads = (x: Tensor, len: number): Tensor => x.reshape(len, batch * this.numHeads, this.headDim).transpose(0, 1);
      // Scaling q before the product (not the scores after) is PyTorch's order of rounding.
      const qHeads = splitHeads(qProjected, queries).div(Math.sqrt(this.headDim));
      const kHeads = splitHeads(kProjected, keys);
      const vHeads = splitHeads(vProjected, keys);

      let scores = qHeads.bmm(kHeads.transpose(1, 2)); // [batch·heads, queries, keys]
      const mask = this.#additiveMask(options, batched, batch, queries, keys, scores.dtype);
      if (mask) scores = scores.add(mask);
      let weights = scores.softmax(-1);
      if (this.training && this.dropout > 0) weights = F.dropout(weights, this.dropout, true);

      const context = weights
        .bmm(vHeads)
        .transpose(0, 1)
        .reshape(queries * batch, this.embedDim);
      const projected = this.outProj.forward(context).reshape(queries, batch, this.embedDim);
      const output = !batched ? projected.squeeze(1) : this.batchFirst ? projected.transpose(0, 1) : projected;
      if (!options.needWeights) return output;

      let perHead = weights.reshape(batch, this.numHeads, queries, keys);
      // sum/numHeads rather than mean: PyTorch's arithmetic, to the last bit.
      if (options.averageAttnWeights ?? true) perHead = perHead.sum(1).div(this.numHeads);
      return { output, weights: batched ? perHead : perHead.squeeze(0) };
    });
  }

  /** Validates ranks and sizes; returns whether the input is batched. */
  #checkInputs(query: Tensor, key: Tensor, value: Tensor): boolean {
    const [qs, ks, vs] = [query.shape, key.shape, value.shape];
    const where = `MultiheadAttention(${this.embedDim}, ${this.numHeads})`;
    const layout = this.batchFirst ? '[batch, sequence, embedDim]' : '[sequence, batch, embedDim]';
    if (qs.length !== 2 && qs.length !== 3) {
      throw new RangeError(`${where}: query must be ${layout} or unbatched [sequence, embedDim], got shape ${describeShape(qs)}`);
    }
    for (const [name, s] of [
      ['query', qs],
      ['key', ks],
      ['value', vs],
    ] as const) {
      if (s.length !== qs.length) throw new RangeError(`${where}: ${name} has shape ${describeShape(s)} but query has ${qs.length} dims`);
      if (s[s.length - 1] !== this.embedDim) {
        throw new RangeError(`${where}: ${name} has shape ${describeShape(s)}, its last dim must be ${this.embedDim}`);
      }
    }
    const batchDim = this.batchFirst ? 0 : 1;
    const seqDim = qs.length === 3 ? 1 - batchDim : 0;
    if (ks[seqDim] !== vs[seqDim]) {
      throw new RangeError(`${where}: key ${describeShape(ks)} and value ${describeShape(vs)} must have as many elements in the sequence`);
    }
    if (qs.length === 3 && (ks[batchDim] !== qs[batchDim] || vs[batchDim] !== qs[batchDim])) {
      throw new RangeError(
        `${where}: query ${describeShape(qs)}, key ${describeShape(ks)} and value ${describeShape(vs)} must share the batch size`,
      );
    }
    return qs.length === 3;
  }

  #projectInputs(q: Tensor, k: Tensor, v: Tensor, isSelfAttention: boolean): [Tensor, Tensor, Tensor] {
    const bias = this.inProjBias;
    // One product for self-attention; otherwise each input meets its own third of the weights.
    if (isSelfAttention) return F.chunk(F.linear(q, this.inProjWeight, bias), 3, -1) as [Tensor, Tensor, Tensor];
    const [wq, wk, wv] = F.chunk(this.inProjWeight, 3, 0) as [Tensor, Tensor, Tensor];
    const [bq, bk, bv] = bias ? (F.chunk(bias, 3, 0) as [Tensor, Tensor, Tensor]) : [null, null, null];
    return [F.linear(q, wq, bq), F.linear(k, wk, bk), F.linear(v, wv, bv)];
  }

  /** The key-padding and attention masks merged into one tensor added to the scores, or null. */
  #additiveMask(
    masks: AttentionMasks,
    batched: boolean,
    batch: number,
    queries: number,
    keys: number,
    dtype: Tensor['dtype'],
  ): Tensor | null {
    const where = `MultiheadAttention(${this.embedDim}, ${this.numHeads})`;
    // Boolean masks mark what is forbidden; as scores they become −∞, which softmax turns into 0.
    const additive = (m: Tensor): Tensor =>
      m.dtype === 'bool' || m.dtype === 'uint8' ? zerosLike(m, { dtype }).maskedFill(m.bool(), -Infinity) : m;
    let total: Tensor | null = null;
    if (masks.attnMask) {
      const shape = masks.attnMask.shape;
      const flat = [queries, keys];
      const perHead = [batch * this.numHeads, queries, keys];
      const same = (a: number[], b: number[]): boolean => a.length === b.length && a.every((d, i) => d === b[i]);
      if (!same(shape, flat) && !same(shape, perHead)) {
        throw new RangeError(
          `${where}: attnMask has shape ${describeShape(shape)}, expected ${describeShape(flat)} or ${describeShape(perHead)}`,
        );
      }
      total = additive(masks.attnMask);
    }
    if (masks.keyPaddingMask) {
      const shape = masks.keyPaddingMask.shape;
      const expected = batched ? [batch, keys] : [keys];
      if (shape.length !== expected.length || shape.some((d, i) => d !== expected[i])) {
        throw new RangeError(`${where}: keyPaddingMask has shape ${describeShape(shape)}, expected ${describeShape(expected)}`);
      }
      // [batch, keys] → [batch·heads, 1, keys]: every head and query of a sample skips the same keys.
      const padding = additive(masks.keyPaddingMask)
        .reshape(batch, 1, 1, keys)
        .expand(-1, this.numHeads, -1, -1)
        .reshape(batch * this.numHeads, 1, keys);
      total = total ? total.add(padding) : padding;
    }
    return total;
  }
}
