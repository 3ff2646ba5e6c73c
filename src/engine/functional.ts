// Neural-network functions (PyTorch's torch.nn.functional), each one libtorch op or a short
// composition of them. Modules in src/nn/ hold parameters and call these.
import { Tensor } from './tensor.js';
import { op } from './op.js';

const ops = {
  linear: op('aten::linear'),
  conv1d: op('aten::conv1d'),
  conv2d: op('aten::conv2d'),
  maxPool1d: op('aten::max_pool1d'),
  maxPool2d: op('aten::max_pool2d'),
  avgPool1d: op('aten::avg_pool1d'),
  avgPool2d: op('aten::avg_pool2d'),
  adaptiveAvgPool2d: op('aten::adaptive_avg_pool2d'),
  adaptiveMaxPool2d: op<[Tensor, Tensor]>('aten::adaptive_max_pool2d'),
  batchNorm: op('aten::batch_norm'),
  layerNorm: op('aten::layer_norm'),
  groupNorm: op('aten::group_norm'),
  embedding: op('aten::embedding'),
  dropout: op('aten::dropout'),
  crossEntropy: op('aten::cross_entropy_loss'),
  mseLoss: op('aten::mse_loss'),
  cosineSimilarity: op('aten::cosine_similarity'),
  normOverDim: op('aten::linalg_vector_norm'),
  clampMin: op('aten::clamp_min'),
  upsampleNearest2d: op('aten::upsample_nearest2d', 'vec'),
  upsampleBilinear2d: op('aten::upsample_bilinear2d', 'vec'),
  upsampleBicubic2d: op('aten::upsample_bicubic2d', 'vec'),
  pad: op('aten::constant_pad_nd'),
  reflectionPad2d: op('aten::reflection_pad2d'),
  replicationPad2d: op('aten::replication_pad2d'),
  split: op<Tensor[]>('aten::split', 'Tensor'),
  splitWithSizes: op<Tensor[]>('aten::split_with_sizes'),
  chunk: op<Tensor[]>('aten::chunk'),
  oneHot: op('aten::one_hot'),
};

type Pair = number | [number, number];

/** y = x Wᵀ + b */
export function linear(input: Tensor, weight: Tensor, bias: Tensor | null = null): Tensor {
  return ops.linear(input, weight, bias);
}

export function relu(x: Tensor): Tensor {
  return x.relu();
}
export function gelu(x: Tensor, approximate: 'none' | 'tanh' = 'none'): Tensor {
  return x.gelu(approximate);
}
export function silu(x: Tensor): Tensor {
  return x.silu();
}
export function tanh(x: Tensor): Tensor {
  return x.tanh();
}
export function sigmoid(x: Tensor): Tensor {
  return x.sigmoid();
}
export function softmax(x: Tensor, dim: number): Tensor {
  return x.softmax(dim);
}
export function logSoftmax(x: Tensor, dim: number): Tensor {
  return x.logSoftmax(dim);
}

/** Zeroes elements with probability p and scales the rest by 1/(1−p), in training only. */
export function dropout(x: Tensor, p = 0.5, training = true): Tensor {
  if (p < 0 || p > 1) throw new RangeError(`dropout: p must be in [0, 1], got ${p}`);
  return ops.dropout(x, p, training);
}

export interface ConvOptions {
  stride?: Pair;
  padding?: Pair;
  dilation?: Pair;
  groups?: number;
}

/** Input [N, C, L], weight [out, C/groups, k]. */
export function conv1d(input: Tensor, weight: Tensor, bias: Tensor | null = null, o: ConvOptions = {}): Tensor {
  return ops.conv1d(input, weight, bias, o.stride ?? 1, o.padding ?? 0, o.dilation ?? 1, o.groups ?? 1);
}

/** Input [N, C, H, W], weight [out, C/groups, kh, kw]. */
export function conv2d(input: Tensor, weight: Tensor, bias: Tensor | null = null, o: ConvOptions = {}): Tensor {
  return ops.conv2d(input, weight, bias, o.stride ?? 1, o.padding ?? 0, o.dilation ?? 1, o.groups ?? 1);
}

export interface PoolOptions {
  stride?: Pair;
  padding?: Pair;
  ceilMode?: boolean;
}

export function maxPool1d(x: Tensor, kernelSize: number, o: PoolOptions = {}): Tensor {
  return ops.maxPool1d(x, kernelSize, o.stride ?? kernelSize, o.padding ?? 0, 1, o.ceilMode ?? false);
}
export function maxPool2d(x: Tensor, kernelSize: Pair, o: PoolOptions = {}): Tensor {
  return ops.maxPool2d(x, kernelSize, o.stride ?? kernelSize, o.padding ?? 0, 1, o.ceilMode ?? false);
}
export function avgPool1d(x: Tensor, kernelSize: number, o: PoolOptions = {}): Tensor {
  return ops.avgPool1d(x, kernelSize, o.stride ?? kernelSize, o.padding ?? 0, o.ceilMode ?? false, true);
}
export function avgPool2d(x: Tensor, kernelSize: Pair, o: PoolOptions = {}): Tensor {
  return ops.avgPool2d(x, kernelSize, o.stride ?? kernelSize, o.padding ?? 0, o.ceilMode ?? false, true, null);
}
export function adaptiveAvgPool2d(x: Tensor, outputSize: Pair): Tensor {
  return ops.adaptiveAvgPool2d(x, outputSize);
}
export function adaptiveMaxPool2d(x: Tensor, outputSize: Pair): Tensor {
  const [values] = ops.adaptiveMaxPool2d(x, outputSize);
  return values;
}

export interface BatchNormOptions {
  weight?: Tensor | null;
  bias?: Tensor | null;
  training?: boolean;
  momentum?: number;
  eps?: number;
}

/**
 * Batch normalisation over dim 1. In training it normalises with the batch statistics and updates
 * runningMean/runningVar in place (unbiased variance, as PyTorch); in eval it uses them.
 */
export function batchNorm(x: Tensor, runningMean: Tensor | null, runningVar: Tensor | null, o: BatchNormOptions = {}): Tensor {
  return ops.batchNorm(
    x,
    o.weight ?? null,
    o.bias ?? null,
    runningMean,
    runningVar,
    o.training ?? false,
    o.momentum ?? 0.1,
    o.eps ?? 1e-5,
    true,
  );
}

export function layerNorm(
  x: Tensor,
  normalizedShape: number[],
  weight: Tensor | null = null,
  bias: Tensor | null = null,
  eps = 1e-5,
): Tensor {
  return ops.layerNorm(inNormPrecision(x, weight), normalizedShape, weight, bias, eps, true);
}

export function groupNorm(x: Tensor, numGroups: number, weight: Tensor | null = null, bias: Tensor | null = null, eps = 1e-5): Tensor {
  return ops.groupNorm(inNormPrecision(x, weight), numGroups, weight, bias, eps, true);
}

/**
 * Under autocast a bfloat16 or float16 activation meets a norm's float32 weight: the statistics
 * are then taken in float32 (the output is float32), as CUDA's autocast runs layer_norm and
 * group_norm, where libtorch 1.13's CPU kernels would refuse the mixed dtypes.
 */
function inNormPrecision(x: Tensor, weight: Tensor | null): Tensor {
  return weight !== null && weight.dtype === 'float32' && (x.dtype === 'bfloat16' || x.dtype === 'float16') ? x.float() : x;
}

/** Rows of weight picked by integer indices; paddingIdx's row gets no gradient. */
export function embedding(indices: Tensor, weight: Tensor, paddingIdx = -1): Tensor {
  return ops.embedding(weight, indices, paddingIdx, false, false);
}

/** x / max(‖x‖_p, eps) along dim (PyTorch's F.normalize). */
export function normalize(x: Tensor, dim = -1, p = 2, eps = 1e-12): Tensor {
  const norm = ops.normOverDim(x, p, [dim], true, null);
  const safe = ops.clampMin(norm, eps);
  const out = x.div(safe.expandAs(x));
  norm.dispose();
  safe.dispose();
  return out;
}

export function cosineSimilarity(a: Tensor, b: Tensor, dim = 1, eps = 1e-8): Tensor {
  return ops.cosineSimilarity(a, b, dim, eps);
}

type Reduction = 'none' | 'mean' | 'sum';
const REDUCTION: Record<Reduction, number> = { none: 0, mean: 1, sum: 2 };

/** Cross-entropy of logits [N, C] against int64 class indices [N]. */
export function crossEntropy(
  logits: Tensor,
  target: Tensor,
  o: { reduction?: Reduction; labelSmoothing?: number; ignoreIndex?: number; weight?: Tensor } = {},
): Tensor {
  return ops.crossEntropy(logits, target, o.weight ?? null, REDUCTION[o.reduction ?? 'mean'], o.ignoreIndex ?? -100, o.labelSmoothing ?? 0);
}

export function mseLoss(input: Tensor, target: Tensor, reduction: Reduction = 'mean'): Tensor {
  return ops.mseLoss(input, target, REDUCTION[reduction]);
}

export interface InterpolateOptions {
  size?: [number, number];
  scaleFactor?: number | [number, number];
  mode?: 'nearest' | 'bilinear' | 'bicubic';
  alignCorners?: boolean;
}

/** Resizes [N, C, H, W] images to `size` or by `scaleFactor` (F.interpolate). */
export function interpolate(x: Tensor, o: InterpolateOptions): Tensor {
  if ((o.size === undefined) === (o.scaleFactor === undefined)) {
    throw new TypeError('interpolate: give exactly one of size and scaleFactor');
  }
  const scales = o.scaleFactor === undefined ? null : typeof o.scaleFactor === 'number' ? [o.scaleFactor, o.scaleFactor] : o.scaleFactor;
  const size = o.size ?? null;
  switch (o.mode ?? 'nearest') {
    case 'nearest':
      return ops.upsampleNearest2d(x, size, scales);
    case 'bilinear':
      return ops.upsampleBilinear2d(x, size, o.alignCorners ?? false, scales);
    case 'bicubic':
      return ops.upsampleBicubic2d(x, size, o.alignCorners ?? false, scales);
  }
}

/**
 * Pads the last dims: `pad` is [left, right, top, bottom, ...] as in F.pad. Modes other than
 * 'constant' take 4-D input and 4 pad values.
 */
export function pad(x: Tensor, padding: number[], mode: 'constant' | 'reflect' | 'replicate' = 'constant', value = 0): Tensor {
  if (mode === 'constant') return ops.pad(x, padding, value);
  if (mode === 'reflect') return ops.reflectionPad2d(x, padding);
  return ops.replicationPad2d(x, padding);
}

/** Pieces of `size` along dim (the last may be smaller), or of the given sizes. Views. */
export function split(x: Tensor, size: number | number[], dim = 0): Tensor[] {
  return typeof size === 'number' ? ops.split(x, size, dim) : ops.splitWithSizes(x, size, dim);
}

/** `chunks` nearly equal pieces along dim. Views. */
export function chunk(x: Tensor, chunks: number, dim = 0): Tensor[] {
  return ops.chunk(x, chunks, dim);
}

/** int64 class indices → one-hot int64 [..., numClasses]. */
export function oneHot(indices: Tensor, numClasses = -1): Tensor {
  return ops.oneHot(indices, numClasses);
}
