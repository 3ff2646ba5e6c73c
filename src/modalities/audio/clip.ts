// The length rule: every clip becomes exactly clipSeconds of audio at the modality's sample rate,
// so a batch is one [N, samples] tensor and every spectrogram has the same number of frames.
// A longer clip keeps its centre: collate is deterministic (it has no generator), and a spoken
// caption sits in the middle of its file more often than at either end; the training views then
// move and stretch the time axis (views.ts, random resize crop). A shorter clip is padded with
// zeros (silence) at the end, so its sound starts at frame 0 whatever its length. The centre crop
// is taken before resampling (resample computes only the outputs kept), so an hour-long file
// costs a decode, not an hour of filtering.
import { resample, resampledLength } from './resample.js';
import type { DecodedAudio } from './decode.js';

/** Samples in a clip of `clipSeconds` at `sampleRate` Hz (rounded). */
export function clipSamples(clipSeconds: number, sampleRate: number): number {
  return Math.round(clipSeconds * sampleRate);
}

/**
 * A decoded clip at `sampleRate` Hz and exactly `samples` long: resampled, centre-cropped when
 * longer, zero-padded at the end when shorter.
 *
 * @example
 * fitClip({ samples: new Float32Array(88200), sampleRate: 44100 }, 16000, 32000).length; // 32000 (2 s of a 2 s file)
 */
export function fitClip(audio: DecodedAudio, sampleRate: number, samples: number): Float32Array {
  const available = resampledLength(audio.samples.length, audio.sampleRate, sampleRate);
  const start = available > samples ? Math.floor((available - samples) / 2) : 0;
  const kept = Math.min(available, samples);
  const out = new Float32Array(samples);
  const resampled = resample(audio.samples, audio.sampleRate, sampleRate, { start, length: kept });
  out.set(resampled.data() as Float32Array);
  resampled.dispose();
  return out;
}
