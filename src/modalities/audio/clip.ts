// The length rule: every clip becomes exactly clipSeconds of audio at the modality's sample rate,
// so a batch is one [N, samples] tensor and every spectrogram has the same number of frames.
// A longer clip keeps its first clipSeconds by default ('start'): a spoken caption begins at the
// start of its file and says what it is about first ("an icon of ab testing, from the Material
// Design Icons set, ..."), so the words a crop would lose are the least informative; 'centre'
// keeps the middle instead, for recordings with lead-in. The crop is deterministic, as collate has
// no generator; the training views move and stretch the time axis (views.ts, random resize crop).
// A shorter clip is padded with zeros (silence) at the end, so its sound starts at frame 0 whatever
// its length. Only the samples kept are filtered (resample's start and length), so an hour-long
// file costs a decode, not an hour of resampling.
import { resample, resampledLength } from './resample.js';
import type { DecodedAudio } from './decode.js';

/** Samples in a clip of `clipSeconds` at `sampleRate` Hz (rounded). */
export function clipSamples(clipSeconds: number, sampleRate: number): number {
  return Math.round(clipSeconds * sampleRate);
}

/** Which part of a longer clip is kept. */
export type ClipCrop = 'start' | 'centre';

/**
 * A decoded clip at `sampleRate` Hz and exactly `samples` long: resampled, cropped when longer
 * (its start, or its centre), zero-padded at the end when shorter.
 *
 * @example
 * fitClip({ samples: new Float32Array(441000), sampleRate: 44100 }, 16000, 48000).length; // 48000: the first 3 s of 10 s
 */
export function fitClip(audio: DecodedAudio, sampleRate: number, samples: number, crop: ClipCrop = 'start'): Float32Array {
  const available = resampledLength(audio.samples.length, audio.sampleRate, sampleRate);
  const start = available > samples && crop === 'centre' ? Math.floor((available - samples) / 2) : 0;
  const kept = Math.min(available, samples);
  const out = new Float32Array(samples);
  const resampled = resample(audio.samples, audio.sampleRate, sampleRate, { start, length: kept });
  out.set(resampled.data() as Float32Array);
  resampled.dispose();
  return out;
}
