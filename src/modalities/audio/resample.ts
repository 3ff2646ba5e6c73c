// Band-limited resampling of a waveform, with the engine. It is torchaudio's `resample` default
// (sinc_interp_hann, lowpass_filter_width 6, rolloff 0.99): each output sample is the input
// convolved with a Hann-windowed sinc low-pass at rolloff·min(from, to)/2 Hz. The npm resamplers
// at hand are a WebAssembly libsamplerate build and JS ones with short or unwindowed kernels, and
// torchaudio's filter is the one BYOL-A's features were computed with, so it is written here.
//
// Like torchaudio, the rates are divided by their gcd (from' = from/g, to' = to/g): output
// samples repeat their filter every to' samples, so one kernel per phase, [to', taps], is built
// once per pair of rates (cached) and applied as one strided conv1d. For rates with a small gcd
// (44101 Hz and 16000 Hz: 16000 kernels of 44 000 taps, gigabytes) every output sample instead
// gathers its own taps with weights from the same formula, in blocks. Either way only the
// outputs asked for are computed, so a centre crop of a long clip filters only what it keeps.
import { arange, cat, F, keep, noGrad, tensor, tidy, zeros, type Tensor } from '../../engine/index.js';

/** The filter: torchaudio's defaults. */
export interface SincFilterOptions {
  /** Zero crossings of the sinc on each side (default 6): sharper cut-off, more taps. */
  lowpassFilterWidth?: number;
  /** The cut-off as a fraction of the lower Nyquist frequency (default 0.99). */
  rolloff?: number;
}

export interface ResampleOptions extends SincFilterOptions {
  /** First output sample to compute (default 0). */
  start?: number;
  /** How many output samples (default: all, {@link resampledLength} − start); outputs past the end are zeros' response. */
  length?: number;
}

/** The number of samples `inputLength` samples at `fromRate` become at `toRate`: ⌈toRate·n/fromRate⌉, as torchaudio. */
export function resampledLength(inputLength: number, fromRate: number, toRate: number): number {
  return Math.ceil((toRate * inputLength) / fromRate);
}

/** Outputs per gathered block, so that one block's [outputs, taps] float64 tensors stay near 16 MB. */
const GATHER_ELEMENTS = 1 << 21;

/**
 * A mono waveform (float32 samples at `fromRate` Hz) resampled to `toRate` Hz: float32 [length].
 * Equal rates return the samples themselves (sliced).
 *
 * @example
 * const at16k = resample(samples44k, 44100, 16000); // Tensor [ceil(16000 · n / 44100)]
 */
export function resample(waveform: Float32Array, fromRate: number, toRate: number, options: ResampleOptions = {}): Tensor {
  for (const [name, rate] of [
    ['fromRate', fromRate],
    ['toRate', toRate],
  ] as const)
    if (!Number.isInteger(rate) || rate <= 0) throw new RangeError(`resample: ${name} must be a positive integer (Hz), got ${rate}`);
  const lowpassFilterWidth = options.lowpassFilterWidth ?? 6;
  const rolloff = options.rolloff ?? 0.99;
  if (!(lowpassFilterWidth > 0)) throw new RangeError(`resample: lowpassFilterWidth must be positive, got ${lowpassFilterWidth}`);
  if (!(rolloff > 0 && rolloff <= 1)) throw new RangeError(`resample: rolloff must be in (0, 1], got ${rolloff}`);
  const inputLength = waveform.length;
  const start = options.start ?? 0;
  const length = options.length ?? Math.max(0, resampledLength(inputLength, fromRate, toRate) - start);
  if (!Number.isInteger(start) || start < 0 || !Number.isInteger(length) || length < 0)
    throw new RangeError(`resample: start and length must be non-negative integers, got ${start} and ${length}`);

  if (fromRate === toRate) {
    const out = new Float32Array(length);
    out.set(waveform.subarray(Math.min(start, inputLength), Math.min(start + length, inputLength)));
    return tensor(out);
  }
  if (length === 0 || inputLength === 0) return zeros([length]);
  const divisor = gcd(fromRate, toRate);
  const kernel = phaseKernel(fromRate / divisor, toRate / divisor, lowpassFilterWidth, rolloff);
  return kernel
    ? resampleByPhases(waveform, fromRate / divisor, toRate / divisor, kernel, start, length)
    : resampleByGathering(waveform, fromRate, toRate, lowpassFilterWidth, rolloff, start, length);
}

const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));

/** Largest phase kernel built, in elements (16 MB of float32); past it, the gathering path. */
const MAX_KERNEL_ELEMENTS = 1 << 22;

interface PhaseKernel {
  /** [to', 1, 2·width + from'] float32: row i filters output phase i. */
  weights: Tensor;
  /** Input samples each block reaches before its first and after its last. */
  width: number;
}

const kernels = new Map<string, PhaseKernel | null>();

/**
 * torchaudio's _get_sinc_resample_kernel for reduced rates, float64 then float32; null when it
 * would be larger than MAX_KERNEL_ELEMENTS.
 */
function phaseKernel(from: number, to: number, lowpassFilterWidth: number, rolloff: number): PhaseKernel | null {
  const key = `${from}/${to}/${lowpassFilterWidth}/${rolloff}`;
  const cached = kernels.get(key);
  if (cached !== undefined) return cached;
  const cutoff = Math.min(from, to) * rolloff;
  const width = Math.ceil((lowpassFilterWidth * from) / cutoff);
  const taps = 2 * width + from;
  let kernel: PhaseKernel | null = null;
  if (to * taps <= MAX_KERNEL_ELEMENTS) {
    const weights = noGrad(() =>
      tidy(() => {
        // t[i, k] = (k − width)/from − i/to: the time from output phase i to tap k, in input periods of the reduced rate.
        const idx = arange(-width, width + from, 1, { dtype: 'float64' })
          .div(from)
          .unsqueeze(0);
        const phase = arange(0, to, 1, { dtype: 'float64' }).div(-to).unsqueeze(1);
        return sincWeights(phase.add(idx).mul(cutoff), lowpassFilterWidth, cutoff / from)
          .float()
          .unsqueeze(1);
      }),
    );
    kernel = { weights: keep(weights), width };
  }
  kernels.set(key, kernel);
  return kernel;
}

/** Hann-windowed sinc at t (in cut-off periods), zero past ±lowpassFilterWidth, times `scale`. */
function sincWeights(t: Tensor, lowpassFilterWidth: number, scale: number): Tensor {
  const inside = t.abs().lt(lowpassFilterWidth);
  const clamped = t.clamp(-lowpassFilterWidth, lowpassFilterWidth);
  const window = clamped
    .mul(Math.PI / lowpassFilterWidth / 2)
    .cos()
    .square();
  const angle = clamped.mul(Math.PI);
  const zero = angle.eq(0);
  const sinc = angle.sin().div(angle.maskedFill(zero, 1)).maskedFill(zero, 1);
  return sinc.mul(window).mul(scale).maskedFill(inside.logicalNot(), 0);
}

/**
 * Outputs start..start+length by the phase kernel: block b of to' outputs reads the input from
 * b·from' − width, as torchaudio's padded conv1d does; only the blocks holding the outputs asked
 * for are convolved.
 */
function resampleByPhases(waveform: Float32Array, from: number, to: number, kernel: PhaseKernel, start: number, length: number): Tensor {
  const firstBlock = Math.floor(start / to);
  const lastBlock = Math.floor((start + length - 1) / to);
  const segmentStart = firstBlock * from - kernel.width;
  const segment = new Float32Array((lastBlock - firstBlock) * from + 2 * kernel.width + from);
  const copyFrom = Math.max(0, segmentStart);
  const copyTo = Math.min(waveform.length, segmentStart + segment.length);
  if (copyTo > copyFrom) segment.set(waveform.subarray(copyFrom, copyTo), copyFrom - segmentStart);
  return noGrad(() =>
    tidy(() => {
      const blocks = F.conv1d(tensor(segment).reshape(1, 1, -1), kernel.weights, null, { stride: from }); // [1, to', blocks]
      return blocks
        .squeeze(0)
        .t()
        .reshape(-1)
        .narrow(0, start - firstBlock * to, length)
        .contiguous();
    }),
  );
}

/** Outputs start..start+length, each gathering its own taps (rates whose phase kernel would be too large). */
function resampleByGathering(
  waveform: Float32Array,
  fromRate: number,
  toRate: number,
  lowpassFilterWidth: number,
  rolloff: number,
  start: number,
  length: number,
): Tensor {
  const inputLength = waveform.length;
  return noGrad(() =>
    tidy(() => {
      const x = tensor(waveform).double();
      // The filter's cut-off (Hz) and its half-width in input samples.
      const cutoff = Math.min(fromRate, toRate) * rolloff;
      const halfWidth = (lowpassFilterWidth * fromRate) / cutoff;
      const taps = Math.floor(2 * halfWidth) + 2;
      const offsets = arange(0, taps, 1, { dtype: 'float64' }).unsqueeze(0);
      const blockSize = Math.max(1, Math.floor(GATHER_ELEMENTS / taps));
      const blocks: Tensor[] = [];
      for (let from = start; from < start + length; from += blockSize) {
        const count = Math.min(blockSize, start + length - from);
        blocks.push(
          tidy(() => {
            const j = arange(from, from + count, 1, { dtype: 'float64' }).unsqueeze(1); // output indices [M, 1]
            const first = j
              .mul(fromRate / toRate)
              .sub(halfWidth)
              .floor();
            const n = first.add(offsets); // input indices [M, taps]
            // Time from output j to input n in units of the cut-off's period: n/from − j/to seconds times
            // cutoff, with n·to − j·from exact in float64.
            const phase = n
              .mul(toRate)
              .sub(j.mul(fromRate))
              .mul(cutoff / (fromRate * toRate));
            const inInput = n.ge(0).logicalAnd(n.lt(inputLength));
            const weight = sincWeights(phase, lowpassFilterWidth, cutoff / fromRate).maskedFill(inInput.logicalNot(), 0);
            const values = x
              .indexSelect(
                0,
                n
                  .clamp(0, Math.max(0, inputLength - 1))
                  .long()
                  .flatten(),
              )
              .reshape(count, taps);
            return values.mul(weight).sum(1);
          }),
        );
      }
      return cat(blocks, 0).float();
    }),
  );
}
