// Views of precomputed embeddings for BYOL. An embedding has no pixels to crop, so its views perturb
// the vector itself, batched and drawn from one seeded Generator, in this order:
//   1. mixing: with probability p, x ← (1 − λ)x + λ·x_π with λ ~ U(0, maxLambda) and π a random
//      permutation of the batch (mixup of inputs, Zhang et al. 2018, arXiv:1710.09412, kept to
//      small λ so the item stays itself; i-Mix applies it to contrastive learning, arXiv:2010.08887);
//   2. Gaussian noise, by default with a standard deviation relative to each feature's standard
//      deviation over the batch, so one setting suits embeddings of any scale (unit-normalised text
//      embeddings have features ~1/√d, raw ones can be 10× larger);
//   3. feature dropout: each feature zeroed with probability `rate`, the survivors scaled by
//      1/(1 − rate) as inverted dropout does, so a view's expected value is the clean input the
//      encoder sees at evaluation (SimCSE, Gao et al. 2021, uses dropout as its only augmentation).
// Mixing comes first so that it mixes clean vectors; dropout last so dropped features are exactly 0.
import { randn, rand, randperm, tidy, type Generator, type Tensor } from '../../engine/index.js';

/** How one view perturbs a batch of embeddings [N, D]. Zero rates/strengths turn a step off. */
export interface VectorViewConfig {
  /** Probability of zeroing each feature, in [0, 1). */
  dropoutRate: number;
  /** Noise standard deviation: a multiple of each feature's batch std ('relative') or in input units ('absolute'). */
  noiseStd: number;
  noiseScale: 'relative' | 'absolute';
  /** Probability that an item is mixed with a random partner from the batch. */
  mixP: number;
  /** Upper bound of the partner's share λ ~ U(0, maxLambda), in [0, 1]. */
  mixMaxLambda: number;
}

/** Modest perturbations: 10% feature dropout, noise of 0.1 feature-std, 20% of items mixed by at most 20%. */
export const DEFAULT_VECTOR_VIEW: Readonly<VectorViewConfig> = Object.freeze({
  dropoutRate: 0.1,
  noiseStd: 0.1,
  noiseScale: 'relative',
  mixP: 0.2,
  mixMaxLambda: 0.2,
});

/** A view that changes nothing (every step off). */
export const IDENTITY_VECTOR_VIEW: Readonly<VectorViewConfig> = Object.freeze({
  dropoutRate: 0,
  noiseStd: 0,
  noiseScale: 'relative',
  mixP: 0,
  mixMaxLambda: 0,
});

/**
 * A complete config from a partial one over the defaults; throws a RangeError naming the field
 * (prefixed by `where`) when a value is out of range.
 */
export function resolveVectorView(partial: Partial<VectorViewConfig> = {}, where = 'vector view'): VectorViewConfig {
  const known = Object.keys(DEFAULT_VECTOR_VIEW);
  const unknown = Object.keys(partial).filter((k) => !known.includes(k));
  if (unknown.length) throw new RangeError(`${where}: unknown field(s) ${unknown.join(', ')}; the fields are ${known.join(', ')}`);
  const c: VectorViewConfig = { ...DEFAULT_VECTOR_VIEW, ...partial };
  const inRange = (field: keyof VectorViewConfig, ok: (v: number) => boolean, range: string): void => {
    const v = c[field];
    if (typeof v !== 'number' || !ok(v)) throw new RangeError(`${where}: ${field} must be ${range}, got ${JSON.stringify(v)}`);
  };
  inRange('dropoutRate', (v) => v >= 0 && v < 1, 'in [0, 1)');
  inRange('noiseStd', (v) => v >= 0 && Number.isFinite(v), 'a finite number ≥ 0');
  inRange('mixP', (v) => v >= 0 && v <= 1, 'in [0, 1]');
  inRange('mixMaxLambda', (v) => v >= 0 && v <= 1, 'in [0, 1]');
  if (c.noiseScale !== 'relative' && c.noiseScale !== 'absolute') {
    throw new RangeError(`${where}: noiseScale must be 'relative' or 'absolute', got ${JSON.stringify(c.noiseScale)}`);
  }
  return c;
}

function checkBatch(x: Tensor, op: string): [number, number] {
  const shape = x.shape;
  if (shape.length !== 2) throw new RangeError(`${op}: expected embeddings [N, D], got shape [${shape.join(', ')}]`);
  return shape as [number, number];
}

/** Uniform [0, 1) draws from g, in x's dtype, on x's device. */
function uniformLike(shape: number[], x: Tensor, g: Generator): Tensor {
  return rand(shape, { generator: g, dtype: x.dtype, device: g.device }).to(x.device);
}

/**
 * Zeroes each element with probability `rate` and scales the rest by 1/(1 − rate).
 *
 * @example
 * featureDropout(x, 0.1, new Generator(0)); // ~10% of the features of each row are 0
 */
export function featureDropout(x: Tensor, rate: number, g: Generator): Tensor {
  checkBatch(x, 'featureDropout');
  if (rate === 0) return x.clone();
  return tidy(() => {
    const keep = uniformLike(x.shape, x, g).ge(rate);
    return x.mul(keep).div(1 - rate);
  });
}

/**
 * Adds N(0, σ²) noise: σ = std · (feature j's standard deviation over the batch) when 'relative'
 * (a batch of one item gets no noise), σ = std when 'absolute'.
 *
 * @example
 * gaussianNoise(x, 0.1, 'relative', new Generator(0));
 */
export function gaussianNoise(x: Tensor, std: number, scale: 'relative' | 'absolute', g: Generator): Tensor {
  const [n, d] = checkBatch(x, 'gaussianNoise');
  if (std === 0) return x.clone();
  return tidy(() => {
    const noise = randn([n, d], { generator: g, dtype: x.dtype, device: g.device }).to(x.device);
    const sigma = scale === 'relative' ? x.detach().std(0, { correction: 0, keepdim: true }).mul(std) : std;
    return x.add(noise.mul(sigma));
  });
}

/**
 * With probability p per item, x_i ← (1 − λ_i)·x_i + λ_i·x_π(i) with λ_i ~ U(0, maxLambda) and π a
 * random permutation of the batch: each output row lies on the segment from its row to its partner.
 *
 * @example
 * mixWithinBatch(x, 0.2, 0.2, new Generator(0));
 */
export function mixWithinBatch(x: Tensor, p: number, maxLambda: number, g: Generator): Tensor {
  const [n] = checkBatch(x, 'mixWithinBatch');
  if (p === 0 || maxLambda === 0 || n < 2) return x.clone();
  return tidy(() => {
    const partner = x.indexSelect(0, randperm(n, { generator: g, device: g.device }).to(x.device));
    const mixed = uniformLike([n, 1], x, g).lt(p);
    const lambda = uniformLike([n, 1], x, g).mul(maxLambda).mul(mixed);
    return x.add(partner.sub(x).mul(lambda));
  });
}

/**
 * One view of a batch of embeddings [N, D]: mixing, then noise, then feature dropout, as `config`
 * says. Always a new tensor; the batch is left as it was.
 *
 * @example
 * const g = new Generator(7);
 * const v = vectorView(batch, resolveVectorView({ dropoutRate: 0.2 }), g); // same shape as batch
 */
export function vectorView(x: Tensor, config: VectorViewConfig, g: Generator): Tensor {
  checkBatch(x, 'vectorView');
  return tidy(() => {
    const mixed = mixWithinBatch(x, config.mixP, config.mixMaxLambda, g);
    const noisy = gaussianNoise(mixed, config.noiseStd, config.noiseScale, g);
    return featureDropout(noisy, config.dropoutRate, g);
  });
}
