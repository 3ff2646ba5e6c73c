// Log-mel spectrograms with the engine: libtorch's STFT (centred frames, reflect padding, a periodic
// Hann window of windowLength zero-padded to nFft), the power spectrum |X|², the mel filterbank
// (mel_filterbank.ts) as a matrix product, and log(mel + ε) with ε float32's machine epsilon.
// These are BYOL-A's features (Niizumi et al. 2021, arXiv:2103.06695, §4.1: torchaudio's
// MelSpectrogram, 64 mels, 25 ms window, 10 ms hop, 60–7800 Hz at 16 kHz, then log(x + eps)).
import { keep, noGrad, op, tensor, tidy, type Tensor } from '../../engine/index.js';
import { melFilterbank } from './mel_filterbank.js';

const ops = {
  hannWindow: op('aten::hann_window'),
  // The `center` overload pads each clip by nFft/2 on both sides (reflect), as torch.stft(center=True).
  stft: op('aten::stft', 'center'),
  abs: op('aten::abs'),
};

/** float32's machine epsilon (torch.finfo(torch.float32).eps): BYOL-A's floor under the log. */
export const LOG_EPSILON = 2 ** -23;

/** What a log-mel spectrogram is computed with. */
export interface LogMelSettings {
  /** Hz. */
  sampleRate: number;
  /** FFT size (frequency bins nFft/2 + 1). */
  nFft: number;
  /** Samples per analysis window (≤ nFft). */
  windowLength: number;
  /** Samples between frames. */
  hopLength: number;
  nMels: number;
  /** Hz. */
  fMin: number;
  /** Hz. */
  fMax: number;
}

/** Frames of a clip of `samples` samples: centred frames every hopLength samples, 1 + ⌊samples / hop⌋. */
export function logMelFrames(samples: number, hopLength: number): number {
  return 1 + Math.floor(samples / hopLength);
}

/**
 * Waveforms → log-mel spectrograms, with the window and filterbank built once.
 *
 * @example
 * const logMel = new LogMelSpectrogram({ sampleRate: 16000, nFft: 1024, windowLength: 400, hopLength: 160, nMels: 64, fMin: 60, fMax: 7800 });
 * logMel.compute(waveforms).shape; // [N, 64, 1 + L / 160] for waveforms [N, L]
 */
export class LogMelSpectrogram {
  readonly settings: Readonly<LogMelSettings>;
  /** [nMels, nFft/2 + 1]: the filterbank transposed, to multiply power spectra [N, bins, T] from the left. */
  readonly #filterbank: Tensor;
  readonly #window: Tensor;

  constructor(settings: LogMelSettings) {
    const { nFft, windowLength, hopLength, nMels, sampleRate } = settings;
    for (const [name, value] of Object.entries({ sampleRate, nFft, windowLength, hopLength, nMels }))
      if (!Number.isInteger(value) || value <= 0) throw new RangeError(`log-mel: ${name} must be a positive integer, got ${value}`);
    if (windowLength > nFft) throw new RangeError(`log-mel: windowLength ${windowLength} is longer than nFft ${nFft}`);
    this.settings = { ...settings };
    const fb = melFilterbank(settings);
    this.#filterbank = keep(
      tensor(fb, { shape: [Math.floor(nFft / 2) + 1, nMels] })
        .t()
        .contiguous(),
    );
    // Periodic Hann (torch.hann_window's default), as torchaudio's MelSpectrogram.
    this.#window = keep(ops.hannWindow(windowLength, null, null, null, null));
  }

  /** float32 waveforms [N, L] → log-mel float32 [N, nMels, 1 + ⌊L / hopLength⌋], without autograd. */
  compute(waveforms: Tensor): Tensor {
    const { nFft, hopLength, windowLength } = this.settings;
    const shape = waveforms.shape;
    if (shape.length !== 2) throw new RangeError(`log-mel: expected waveforms [N, samples], got shape [${shape.join(', ')}]`);
    // Reflect padding needs more samples than it pads.
    if (shape[1]! <= Math.floor(nFft / 2))
      throw new RangeError(`log-mel: clips of ${shape[1]} samples are too short for nFft ${nFft} (need more than ${Math.floor(nFft / 2)})`);
    return noGrad(() =>
      tidy(() => {
        const device = waveforms.device;
        const window = this.#window.device === device ? this.#window : this.#window.to(device);
        const filterbank = this.#filterbank.device === device ? this.#filterbank : this.#filterbank.to(device);
        // Complex [N, bins, T] stays a handle: only abs reads it.
        const spectrum = ops.stft(waveforms.float(), nFft, hopLength, windowLength, window, true, 'reflect', false, true, true);
        const power = ops.abs(spectrum).square();
        return filterbank.matmul(power).add(LOG_EPSILON).log();
      }),
    );
  }
}
