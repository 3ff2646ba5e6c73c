// Parameter initialisation, as torch.nn.init: every function fills its tensor in place without
// recording gradients and returns it. The formulas, and the order in which random numbers are
// drawn, are PyTorch's, so a module built after manualSeed(s) gets the weights PyTorch gets.
import { noGrad, op, scalar, tidy, type Generator, type Tensor } from '../engine/index.js';

const ops = {
  uniform_: op('aten::uniform_'),
  normal_: op('aten::normal_'),
  erfinv_: op('aten::erfinv_'),
};

/** Options every random initialiser takes: a generator makes the draw independent of the global seed. */
export interface InitOptions {
  generator?: Generator;
}

/** The activations calculateGain knows, by PyTorch's names. */
export type Nonlinearity = 'linear' | 'identity' | 'conv1d' | 'conv2d' | 'conv3d' | 'sigmoid' | 'tanh' | 'relu' | 'leaky_relu' | 'selu';

/** Whether a fan counts the inputs (preserves activation variance forward) or the outputs (backward). */
export type FanMode = 'fan_in' | 'fan_out';

/**
 * The gain that keeps activation variance stable through `nonlinearity` (torch.nn.init.calculate_gain);
 * `param` is leaky_relu's negative slope (default 0.01).
 *
 * @example
 * calculateGain('relu'); // Math.SQRT2
 */
export function calculateGain(nonlinearity: Nonlinearity, param?: number): number {
  switch (nonlinearity) {
    case 'linear':
    case 'identity':
    case 'conv1d':
    case 'conv2d':
    case 'conv3d':
    case 'sigmoid':
      return 1;
    case 'tanh':
      return 5 / 3;
    case 'relu':
      return Math.sqrt(2);
    case 'leaky_relu': {
      const slope = param ?? 0.01;
      return Math.sqrt(2 / (1 + slope * slope));
    }
    case 'selu':
      // Self-normalizing networks want unit-variance inputs; 3/4 is PyTorch's choice for SELU.
      return 3 / 4;
    default:
      throw new RangeError(`calculateGain: unsupported nonlinearity '${String(nonlinearity)}'`);
  }
}

/**
 * fan_in and fan_out of a weight laid out [out, in, ...kernel] (Linear, ConvNd): the number of
 * inputs and outputs each unit connects to.
 *
 * @example
 * fanInAndFanOut(zeros([16, 3, 5, 5])); // { fanIn: 75, fanOut: 400 }
 */
export function fanInAndFanOut(t: Tensor): { fanIn: number; fanOut: number } {
  const shape = t.shape;
  if (shape.length < 2) {
    throw new RangeError(`fanInAndFanOut: fans need a tensor of at least 2 dims [out, in, ...], got shape [${shape.join(', ')}]`);
  }
  const receptiveField = shape.slice(2).reduce((a, b) => a * b, 1);
  return { fanIn: shape[1]! * receptiveField, fanOut: shape[0]! * receptiveField };
}

function fanFor(t: Tensor, mode: FanMode): number {
  const { fanIn, fanOut } = fanInAndFanOut(t);
  if (mode === 'fan_in') return fanIn;
  if (mode === 'fan_out') return fanOut;
  throw new RangeError(`init: mode must be 'fan_in' or 'fan_out', got '${String(mode)}'`);
}

/**
 * Fills `t` with draws from U(low, high).
 *
 * @example
 * uniform_(zeros([3]), -0.1, 0.1, { generator: new Generator(0) });
 */
export function uniform_(t: Tensor, low = 0, high = 1, options: InitOptions = {}): Tensor {
  noGrad(() => ops.uniform_.inPlace(t, low, high, options.generator ?? null));
  return t;
}

/**
 * Fills `t` with draws from N(mean, std²).
 *
 * @example
 * normal_(zeros([3]), 0, 0.02);
 */
export function normal_(t: Tensor, mean = 0, std = 1, options: InitOptions = {}): Tensor {
  noGrad(() => ops.normal_.inPlace(t, mean, std, options.generator ?? null));
  return t;
}

/**
 * Fills `t` with N(mean, std²) restricted to [a, b] (ViT-style weights), by inverse-CDF sampling as
 * torch.nn.init.trunc_normal_: uniform on [cdf(a), cdf(b)] mapped back through erfinv.
 *
 * @example
 * truncNormal_(zeros([768, 768]), { std: 0.02 });
 */
export function truncNormal_(t: Tensor, options: InitOptions & { mean?: number; std?: number; a?: number; b?: number } = {}): Tensor {
  const { mean = 0, std = 1, a = -2, b = 2 } = options;
  // The bounds' CDF in double precision, as PyTorch computes them with math.erf.
  const normCdf = (x: number): number =>
    tidy(
      () =>
        (1 +
          scalar(x / Math.SQRT2, { dtype: 'float64' })
            .erf()
            .item()) /
        2,
    );
  const low = normCdf((a - mean) / std);
  const high = normCdf((b - mean) / std);
  noGrad(() => {
    ops.uniform_.inPlace(t, 2 * low - 1, 2 * high - 1, options.generator ?? null);
    ops.erfinv_.inPlace(t);
    t.mul_(std * Math.SQRT2)
      .add_(mean)
      .clamp_(a, b);
  });
  return t;
}

/** Fills `t` with `value`. */
export function constant_(t: Tensor, value: number): Tensor {
  noGrad(() => t.fill_(value));
  return t;
}

/** Fills `t` with 0. */
export function zeros_(t: Tensor): Tensor {
  return constant_(t, 0);
}

/** Fills `t` with 1. */
export function ones_(t: Tensor): Tensor {
  return constant_(t, 1);
}

/**
 * Glorot & Bengio (2010): U(−a, a) with a = gain·√(6 / (fan_in + fan_out)), keeping activation and
 * gradient variance equal across a layer.
 *
 * @example
 * xavierUniform_(zeros([12, 4])); // bound √(6/16)
 */
export function xavierUniform_(t: Tensor, options: InitOptions & { gain?: number } = {}): Tensor {
  const { fanIn, fanOut } = fanInAndFanOut(t);
  const std = (options.gain ?? 1) * Math.sqrt(2 / (fanIn + fanOut));
  const bound = Math.sqrt(3) * std;
  return uniform_(t, -bound, bound, options);
}

/** Glorot & Bengio (2010): N(0, std²) with std = gain·√(2 / (fan_in + fan_out)). */
export function xavierNormal_(t: Tensor, options: InitOptions & { gain?: number } = {}): Tensor {
  const { fanIn, fanOut } = fanInAndFanOut(t);
  const std = (options.gain ?? 1) * Math.sqrt(2 / (fanIn + fanOut));
  return normal_(t, 0, std, options);
}

/** Options of the He initialisers: `a` is the leaky_relu slope the gain is computed for. */
export interface KaimingOptions extends InitOptions {
  a?: number;
  mode?: FanMode;
  nonlinearity?: Nonlinearity;
}

/**
 * He et al. (2015): U(−b, b) with b = gain·√(3 / fan). Linear and Conv2d use a = √5, which makes
 * b = 1/√fan_in.
 *
 * @example
 * kaimingUniform_(zeros([64, 3, 7, 7]), { mode: 'fan_out', nonlinearity: 'relu' }); // ResNet's conv init
 */
export function kaimingUniform_(t: Tensor, options: KaimingOptions = {}): Tensor {
  const fan = fanFor(t, options.mode ?? 'fan_in');
  const gain = calculateGain(options.nonlinearity ?? 'leaky_relu', options.a ?? 0);
  const std = gain / Math.sqrt(fan);
  const bound = Math.sqrt(3) * std;
  return uniform_(t, -bound, bound, options);
}

/** He et al. (2015): N(0, std²) with std = gain/√fan. */
export function kaimingNormal_(t: Tensor, options: KaimingOptions = {}): Tensor {
  const fan = fanFor(t, options.mode ?? 'fan_in');
  const gain = calculateGain(options.nonlinearity ?? 'leaky_relu', options.a ?? 0);
  return normal_(t, 0, gain / Math.sqrt(fan), options);
}

/**
 * PyTorch's default initialisation of Linear and Conv layers: kaiming_uniform with a = √5 (a bound
 * of gain·√(3/fan_in) = 1/√fan_in) for the weight, and U(±1/√fan_in) for the bias.
 */
export function defaultLayerInit_(weight: Tensor, bias: Tensor | null, options: InitOptions = {}): void {
  kaimingUniform_(weight, { a: Math.sqrt(5), generator: options.generator });
  if (!bias) return;
  const { fanIn } = fanInAndFanOut(weight);
  const bound = fanIn > 0 ? 1 / Math.sqrt(fanIn) : 0;
  uniform_(bias, -bound, bound, options);
}
