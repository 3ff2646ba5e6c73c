// The audio modality: WAV files (or samples already at the modality's rate) in, BYOL-A's features,
// views and encoder (Niizumi et al. 2021, arXiv:2103.06695). collate decodes each file
// (decode.ts), brings it to the sample rate and the clip length (clip.ts, resample.ts), computes
// log-mel spectrograms (log_mel.ts) and normalises them with the mean and standard deviation that
// fit measured on training clips (BYOL-A's "pre-normalisation"), giving [N, 1, nMels, frames];
// views.ts draws the two training views, encoder.ts maps a batch to [N, featureDim].
// A JSONL record names its clip (or several, one drawn per epoch) in `audio`, relative to the
// manifest's folder: {"id": "a1", "image": "a1.png", "audio": "a1.wav"}. docs/audio.md has the details.
import { statSync } from 'node:fs';
import { dirname, extname, relative, resolve } from 'node:path';
import { z } from 'zod';
import { noGrad, tensor, tidy, type Generator, type Tensor } from '../../engine/index.js';
import type { TensorModule } from '../../nn/index.js';
import type { EmbedInputs, FitOptions, Modality, ModalityFactory, ModalitySpec } from '../modality.js';
import { EmbedInputError, mediaFiles, readJsonlEmbedInputs } from '../embed_inputs.js';
import { AudioDecodeError, looksLikeWav, MAX_SAMPLE_RATE, readWavFile } from './decode.js';
import { clipSamples, fitClip } from './clip.js';
import { LogMelSpectrogram, logMelFrames } from './log_mel.js';
import { ByolaAudioEncoder } from './encoder.js';
import { featureThread } from './feature_thread.js';
import { audioView, BYOLA_VIEW, randomWindow, type AudioViewConfig } from './views.js';

const WAV_EXTENSIONS = new Set(['.wav']);

export { AudioDecodeError, decodeWav, readWavFile, MAX_SAMPLE_RATE, MAX_CHANNELS, type DecodedAudio } from './decode.js';
export { resample, resampledLength, type ResampleOptions, type SincFilterOptions } from './resample.js';
export { clipSamples, fitClip, type ClipCrop } from './clip.js';
export { melFilterbank, hzToMel, melToHz, type MelFilterbankOptions } from './mel_filterbank.js';
export { LogMelSpectrogram, logMelFrames, LOG_EPSILON, type LogMelSettings } from './log_mel.js';
export { ByolaAudioEncoder, type AudioEncoderOptions } from './encoder.js';
export { audioView, mixupWithBatch, randomResizeCrop, maskBands, randomWindow, BYOLA_VIEW, type AudioViewConfig } from './views.js';

/** One raw item: a WAV file's path, or mono samples already at the modality's sample rate. */
export type AudioItem = string | Float32Array;

const range = (low: number, defaults: [number, number]) =>
  z
    .tuple([z.number().min(low), z.number().min(low)])
    .refine(([a, b]) => a <= b, 'the range must be [low, high] with low ≤ high')
    .default(defaults);

const nonNegativeInt = (defaultValue: number) => z.number().int().min(0).default(defaultValue);

/** The views' settings (the config's `audio.view`); the defaults are {@link BYOLA_VIEW}. Both views use them. */
export const audioViewSchema = z.strictObject({
  mixupRatio: z.number().min(0).max(1).default(BYOLA_VIEW.mixupRatio),
  virtualCropScale: range(1, [...BYOLA_VIEW.virtualCropScale]),
  freqScale: range(Number.MIN_VALUE, [...BYOLA_VIEW.freqScale]),
  timeScale: range(Number.MIN_VALUE, [...BYOLA_VIEW.timeScale]),
  freqMasks: nonNegativeInt(BYOLA_VIEW.freqMasks),
  freqMaskWidth: nonNegativeInt(BYOLA_VIEW.freqMaskWidth),
  timeMasks: nonNegativeInt(BYOLA_VIEW.timeMasks),
  timeMaskWidth: nonNegativeInt(BYOLA_VIEW.timeMaskWidth),
});

const positiveInt = (defaultValue: number) => z.number().int().positive().default(defaultValue);

/**
 * The config's `audio` section. Defaults: BYOL-A's features at 16 kHz (64 mels, 25 ms window in a
 * 1024-point FFT, 10 ms hop, 60–7800 Hz), 3-second clips from their start (a spoken caption's
 * opening words; BYOL-A's 0.95 s crops of longer clips would cut them), BYOL-A's encoder with
 * d = 512, and its views plus SpecAugment masks.
 */
export const audioSettingsSchema = z
  .strictObject({
    /** Hz; every clip is resampled to it. */
    sampleRate: z.number().int().min(1000).max(MAX_SAMPLE_RATE).default(16000),
    /** Clip length in seconds: longer clips are cropped (see crop), shorter ones zero-padded at the end (clip.ts). */
    clipSeconds: z.number().positive().max(600).default(3),
    /** Which part of a longer clip is kept: its first clipSeconds ('start') or its middle ('centre'). */
    crop: z.enum(['start', 'centre']).default('start'),
    /**
     * Seconds of the clip (its first or its middle, as crop says) from which each training view
     * draws its clipSeconds at random; evaluation and embed keep crop's clipSeconds. Unset: clipSeconds (no draw).
     */
    trainWindowSeconds: z.number().positive().max(600).optional(),
    nMels: z.number().int().min(8).default(64),
    nFft: positiveInt(1024),
    windowLength: positiveInt(400),
    hopLength: positiveInt(160),
    fMin: z.number().min(0).default(60),
    fMax: z.number().positive().default(7800),
    /** The encoder's output width (and its fully connected layers'). */
    featureDim: positiveInt(512),
    /** The encoder's convolution channels. */
    channels: positiveInt(64),
    dropout: z.number().min(0).max(1).default(0.3),
    /** At most this many training clips (evenly spaced) measure the normalisation statistics at fit time. */
    normalizationClips: positiveInt(512),
    view: audioViewSchema.prefault({}),
  })
  .superRefine((s, ctx) => {
    const problem = (path: string, message: string): void => void ctx.addIssue({ code: 'custom', path: [path], message });
    if (s.fMax > s.sampleRate / 2) problem('fMax', `fMax ${s.fMax} Hz is above the Nyquist frequency ${s.sampleRate / 2} Hz`);
    if (s.fMin >= s.fMax) problem('fMin', `fMin ${s.fMin} Hz must be below fMax ${s.fMax} Hz`);
    if (s.windowLength > s.nFft) problem('windowLength', `windowLength ${s.windowLength} is longer than nFft ${s.nFft}`);
    if (s.trainWindowSeconds !== undefined && s.trainWindowSeconds < s.clipSeconds)
      problem('trainWindowSeconds', `trainWindowSeconds ${s.trainWindowSeconds} is shorter than clipSeconds ${s.clipSeconds}`);
    const samples = clipSamples(s.clipSeconds, s.sampleRate);
    if (samples <= s.nFft / 2) problem('clipSeconds', `a clip of ${samples} samples is too short for nFft ${s.nFft}`);
    else if (logMelFrames(samples, s.hopLength) < 8)
      problem(
        'clipSeconds',
        `a clip of ${samples} samples gives fewer than 8 frames at hopLength ${s.hopLength}; the encoder pools 3 times`,
      );
  });

/** Every setting of the audio modality, resolved. */
export type AudioSettings = z.output<typeof audioSettingsSchema>;

/** What fit measures: the training log-mel values' mean and standard deviation (BYOL-A's pre-normalisation). */
export interface AudioNormalization {
  mean: number;
  std: number;
}

/**
 * @example
 * const audio = await audioModality.fit({ clipSeconds: 3 }, ['clips/a.wav', 'clips/b.wav']);
 * const batch = await audio.collate(['clips/a.wav']);   // float32 [1, 1, 64, 301]
 * const [v1, v2] = audio.views(batch, new Generator(0));
 * const y = audio.createEncoder().forward(audio.evalInput(batch)); // [1, 512]
 */
export class AudioModality implements Modality<AudioItem> {
  readonly name = 'audio';
  readonly settings: Readonly<AudioSettings>;
  readonly normalization: Readonly<AudioNormalization>;
  #logMel: LogMelSpectrogram | undefined;

  constructor(settings: Partial<AudioSettings> | Record<string, unknown>, normalization: AudioNormalization = { mean: 0, std: 1 }) {
    this.settings = audioSettingsSchema.parse(settings);
    const { mean, std } = normalization;
    if (!Number.isFinite(mean) || !Number.isFinite(std) || std <= 0)
      throw new RangeError(`audio modality: the normalisation needs a finite mean and a positive std, got ${mean} and ${std}`);
    this.normalization = { mean, std };
  }

  get featureDim(): number {
    return this.settings.featureDim;
  }

  /** Samples per clip: clipSeconds at sampleRate. */
  get clipSamples(): number {
    return clipSamples(this.settings.clipSeconds, this.settings.sampleRate);
  }

  /** Frames per spectrogram that the encoder sees. */
  get frames(): number {
    return logMelFrames(this.clipSamples, this.settings.hopLength);
  }

  /** Samples that collate keeps per clip: trainWindowSeconds (else clipSeconds) at sampleRate. */
  get windowSamples(): number {
    return clipSamples(this.settings.trainWindowSeconds ?? this.settings.clipSeconds, this.settings.sampleRate);
  }

  /** Frames per collated spectrogram: the training window's; views and evalInput cut `frames` out of them. */
  get windowFrames(): number {
    return logMelFrames(this.windowSamples, this.settings.hopLength);
  }

  /**
   * Items → normalised log-mel spectrograms float32 [N, 1, nMels, windowFrames], in item order. A file
   * that cannot be decoded throws an AudioDecodeError naming it and its index (a BadItemError:
   * skipped under data.onBadRecord 'skip'); an item of another type, a TypeError naming its index.
   */
  async collate(items: AudioItem[]): Promise<Tensor> {
    if (!Array.isArray(items)) throw new TypeError('audio collate: items must be an array of WAV paths or Float32Arrays');
    items.forEach((item, i) => {
      if (typeof item !== 'string' && !(item instanceof Float32Array)) throw itemTypeError(item, i, this.settings.sampleRate);
    });
    // On the feature thread (feature_thread.ts), so that a batch collated ahead is made while the step runs.
    const values = await featureThread.features({ ...this.settings }, this.normalization, items);
    return tensor(values, { shape: [items.length, 1, this.settings.nMels, this.windowFrames] });
  }

  /** Items → normalised log-mel values, [N, nMels, windowFrames] flattened: what collate's thread computes. */
  normalizedLogMel(items: AudioItem[]): Float32Array {
    const { mean, std } = this.normalization;
    return tidy(() => this.logMel(items).sub(mean).div(std).contiguous().data() as Float32Array);
  }

  /** Items → log-mel spectrograms [N, nMels, windowFrames], not normalised. */
  logMel(items: AudioItem[]): Tensor {
    if (!Array.isArray(items)) throw new TypeError('audio collate: items must be an array of WAV paths or Float32Arrays');
    const length = this.windowSamples;
    const waveforms = new Float32Array(items.length * length);
    items.forEach((item, i) => waveforms.set(this.#clip(item, i), i * length));
    this.#logMel ??= new LogMelSpectrogram(this.settings);
    if (items.length === 0) return tensor(new Float32Array(0), { shape: [0, this.settings.nMels, this.windowFrames] });
    return noGrad(() => this.#logMel!.compute(tensor(waveforms, { shape: [items.length, length] })));
  }

  /**
   * Two views of a collated batch, drawn one after the other from `generator` (views.ts): each
   * first a random window of `frames` when the training window is longer, then BYOL-A's view.
   */
  views(batch: Tensor, generator: Generator): [Tensor, Tensor] {
    this.#checkBatch(batch, 'views');
    const view = this.settings.view as AudioViewConfig;
    const draw = (): Tensor =>
      this.windowFrames === this.frames
        ? audioView(batch, view, generator)
        : tidy(() => audioView(randomWindow(batch, this.frames, generator), view, generator));
    return [draw(), draw()];
  }

  /** The normalised spectrograms, cut to `frames` where crop says (the first, or the middle) when the training window is longer. */
  evalInput(batch: Tensor): Tensor {
    this.#checkBatch(batch, 'evalInput');
    const spare = this.windowFrames - this.frames;
    if (spare === 0) return batch;
    return batch.narrow(3, this.settings.crop === 'centre' ? Math.floor(spare / 2) : 0, this.frames);
  }

  createEncoder(): TensorModule {
    const { nMels, channels, featureDim, dropout } = this.settings;
    return new ByolaAudioEncoder({ nMels, channels, featureDim, dropout });
  }

  toJSON(): ModalitySpec {
    return { name: this.name, settings: structuredClone({ ...this.settings }), state: { ...this.normalization } };
  }

  /** Nothing to end: the feature thread serves every audio modality of the process, and never keeps it alive idle. */
  async close(): Promise<void> {}

  #clip(item: AudioItem, index: number): Float32Array {
    const { sampleRate } = this.settings;
    if (typeof item === 'string') {
      try {
        return fitClip(readWavFile(item), sampleRate, this.windowSamples, this.settings.crop);
      } catch (err) {
        if (err instanceof AudioDecodeError)
          throw new AudioDecodeError(err.file, `${err.problem} (audio item ${index})`, { index, cause: err });
        throw err;
      }
    }
    if (item instanceof Float32Array) {
      const bad = item.findIndex((v) => !Number.isFinite(v));
      if (bad !== -1) throw new RangeError(`audio item ${index}: sample ${bad} is ${item[bad]}, not a finite number`);
      return fitClip({ samples: item, sampleRate }, sampleRate, this.windowSamples, this.settings.crop);
    }
    throw itemTypeError(item, index, sampleRate);
  }

  #checkBatch(batch: Tensor, method: string): void {
    const { nMels } = this.settings;
    const shape = batch.shape;
    if (shape.length !== 4 || shape[1] !== 1 || shape[2] !== nMels || shape[3] !== this.windowFrames)
      throw new RangeError(`audio ${method}: expected a batch [N, 1, ${nMels}, ${this.windowFrames}], got shape [${shape.join(', ')}]`);
  }
}

/** The error for item `index`, which is neither a WAV file path nor a Float32Array. */
function itemTypeError(item: unknown, index: number, sampleRate: number): TypeError {
  const kind = item === null ? 'null' : Array.isArray(item) ? 'an array' : typeof item;
  return new TypeError(`audio item ${index} is ${kind}; expected a WAV file path or a Float32Array of samples at ${sampleRate} Hz`);
}

/**
 * The mean and standard deviation of the log-mel values of up to `maxClips` clips, evenly spaced
 * over `items` (deterministic: the same training set gives the same statistics), in chunks of 64.
 * With `skipBadItems`, a clip that does not decode is left out (its chunk is read again without
 * it) rather than thrown.
 */
export function measureNormalization(
  modality: AudioModality,
  items: readonly AudioItem[],
  maxClips: number,
  skipBadItems = false,
): AudioNormalization {
  if (items.length === 0) throw new RangeError('audio modality: no training clips to measure the normalisation on');
  const count = Math.min(items.length, maxClips);
  const chosen = Array.from({ length: count }, (_, k) => items[Math.floor((k * items.length) / count)]!);
  let sum = 0;
  let sumSquares = 0;
  let values = 0;
  let firstBad: AudioDecodeError | undefined;
  for (let from = 0; from < count; from += 64) {
    const chunk = chosen.slice(from, from + 64);
    while (chunk.length > 0) {
      try {
        tidy(() => {
          const x = modality.logMel(chunk).double();
          sum += x.sum().item();
          sumSquares += x.square().sum().item();
          values += x.shape.reduce((a, b) => a * b, 1);
        });
        break;
      } catch (err) {
        if (!skipBadItems || !(err instanceof AudioDecodeError) || err.index === undefined) throw err;
        firstBad ??= err;
        chunk.splice(err.index, 1);
      }
    }
  }
  if (values === 0)
    throw new RangeError(`audio modality: none of the ${count} training clips measured decodes; the first: ${firstBad?.message}`);
  const mean = sum / values;
  const std = Math.sqrt(Math.max(sumSquares / values - mean * mean, 0));
  // All-silent training clips have no spread; leave the scale alone rather than divide by zero.
  return { mean, std: std > 1e-6 ? std : 1 };
}

/**
 * `embed --modality audio --input`: a folder (every .wav under it; id = path relative to it), one
 * .wav file (id = its path), or a .jsonl file of {"id", "audio"} lines (paths relative to its folder).
 */
export function readAudioEmbedInputs(input: string): EmbedInputs {
  if (statSync(input).isDirectory()) {
    // Links to files outside the folder are followed: audio has no allowOutside option (yet).
    const files = mediaFiles(input, WAV_EXTENSIONS, true);
    if (files.length === 0) throw new EmbedInputError(`${input}: no .wav files in this folder`);
    return { ids: files.map((f) => relative(input, f)), items: files };
  }
  const ext = extname(input).toLowerCase();
  if (ext === '.wav') return { ids: [input], items: [input] };
  if (ext !== '.jsonl')
    throw new EmbedInputError(
      `${input}: --modality audio reads a folder of .wav files, a .wav file or a .jsonl file of {"id", "audio"} lines`,
    );
  const folder = dirname(resolve(input));
  return readJsonlEmbedInputs(input, {
    name: 'audio',
    holding: 'a WAV file path',
    accepts: (v) => typeof v === 'string' && v !== '',
    toItem: (v) => resolve(folder, v as string),
  });
}

/** A record's `audio`: one path or several (training draws one per epoch), relative to the item's folder. */
function audioPaths(value: unknown, folder: string | undefined): AudioItem[] {
  if (value === undefined || value === null) return [];
  const list = Array.isArray(value) ? value : [value];
  return list.map((v) => (typeof v === 'string' ? resolve(folder ?? '.', v) : (v as AudioItem)));
}

/**
 * The audio modality's factory: rawItems reads a record's `audio`, fit measures the normalisation.
 *
 * @example
 * const audio = await audioModality.fit({}, ['/data/a1.wav', '/data/a2.wav']);
 * const again = audioModality.restore(JSON.parse(JSON.stringify(audio.toJSON())));
 */
export const audioModality: ModalityFactory<AudioItem> = {
  name: 'audio',
  configSchema: audioSettingsSchema as unknown as z.ZodType<Record<string, unknown>>,
  // A JSONL record's `audio` (src/data/jsonl.ts keeps it as extra.audio and the manifest's folder as folder).
  rawItems: (item) => audioPaths(item.extra?.audio, item.folder),
  mediaFiles: { noun: 'audio clip', formats: 'WAV', sniff: looksLikeWav },
  readEmbedInputs: (input) => readAudioEmbedInputs(input),

  async fit(settings: Record<string, unknown>, trainingItems: AudioItem[], options: FitOptions = {}): Promise<AudioModality> {
    const unfitted = new AudioModality(settings);
    const { normalizationClips } = unfitted.settings;
    const normalization = measureNormalization(unfitted, trainingItems, normalizationClips, options.skipBadItems ?? false);
    return new AudioModality(unfitted.settings, normalization);
  },

  restore(spec: ModalitySpec): AudioModality {
    if (spec.name !== 'audio') throw new RangeError(`audioModality.restore: the spec is for modality '${spec.name}', not 'audio'`);
    const state = spec.state as Partial<AudioNormalization> | undefined;
    if (typeof state?.mean !== 'number' || typeof state?.std !== 'number')
      throw new RangeError('audioModality.restore: the spec has no normalisation state {mean, std}');
    return new AudioModality(spec.settings, { mean: state.mean, std: state.std });
  },
};
