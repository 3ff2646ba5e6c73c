// The mel filterbank as a matrix: triangular filters whose centres are evenly spaced on the HTK
// mel scale, m = 2595·log10(1 + f/700), with peak 1 and no area normalisation. This is
// torchaudio's `melscale_fbanks` default (mel_scale 'htk', norm None), the filterbank of
// torchaudio's MelSpectrogram that BYOL-A's features use, so its settings carry over as they are.

/** The filterbank's frequency grid: the one-sided STFT's bins and the mel band edges. */
export interface MelFilterbankOptions {
  sampleRate: number;
  /** FFT size: the STFT has nFft/2 + 1 frequency bins from 0 to sampleRate/2. */
  nFft: number;
  nMels: number;
  /** Lower edge of the first filter, Hz. */
  fMin: number;
  /** Upper edge of the last filter, Hz (at most sampleRate/2). */
  fMax: number;
}

/** Hz → mel, HTK's formula. */
export const hzToMel = (hz: number): number => 2595 * Math.log10(1 + hz / 700);
/** mel → Hz, HTK's formula. */
export const melToHz = (mel: number): number => 700 * (10 ** (mel / 2595) - 1);

/**
 * The filterbank, float32 row-major [nFft/2 + 1, nMels]: power spectrum (bins last) × it = mel energies.
 * Computed in float64 like torchaudio's formula, then rounded once.
 *
 * @example
 * const fb = melFilterbank({ sampleRate: 16000, nFft: 1024, nMels: 64, fMin: 60, fMax: 7800 }); // 513 × 64
 */
export function melFilterbank(o: MelFilterbankOptions): Float32Array {
  if (!(o.fMin >= 0 && o.fMin < o.fMax && o.fMax <= o.sampleRate / 2))
    throw new RangeError(
      `mel filterbank: need 0 ≤ fMin < fMax ≤ sampleRate/2 (${o.sampleRate / 2} Hz), got fMin ${o.fMin}, fMax ${o.fMax}`,
    );
  const nFreqs = Math.floor(o.nFft / 2) + 1;
  // torchaudio spaces the bins over [0, sample_rate // 2].
  const top = Math.floor(o.sampleRate / 2);
  const binHz = Array.from({ length: nFreqs }, (_, k) => (nFreqs === 1 ? 0 : (top * k) / (nFreqs - 1)));
  const melMin = hzToMel(o.fMin);
  const melMax = hzToMel(o.fMax);
  // nMels + 2 edges: filter m rises from edge m to edge m+1 and falls to edge m+2.
  const edges = Array.from({ length: o.nMels + 2 }, (_, i) => melToHz(melMin + ((melMax - melMin) * i) / (o.nMels + 1)));
  const out = new Float32Array(nFreqs * o.nMels);
  for (let k = 0; k < nFreqs; k++) {
    for (let m = 0; m < o.nMels; m++) {
      const rising = (binHz[k]! - edges[m]!) / (edges[m + 1]! - edges[m]!);
      const falling = (edges[m + 2]! - binHz[k]!) / (edges[m + 2]! - edges[m + 1]!);
      out[k * o.nMels + m] = Math.max(0, Math.min(rising, falling));
    }
  }
  return out;
}
