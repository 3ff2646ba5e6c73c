// The audio modality (src/modalities/audio/): log-mel features and resampling against PyTorch
// references recorded by python/audio_reference.py (torch.stft + torchaudio's mel and resampling
// formulas, in float64), the length rule, BYOL-A's views, the encoder, refusals of bad audio
// naming the file, and a JSONL manifest where half the items have a clip training through the
// command and embedding audio files, and the export's audio in PyTorch (python/byol_align_export.py).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import wavefile from 'wavefile';
import { Generator, manualSeed, randn, tensor, type Tensor } from '../src/engine/index.js';
import {
  AudioDecodeError,
  AudioModality,
  audioModality,
  audioView,
  BYOLA_VIEW,
  decodeWav,
  ByolaAudioEncoder,
  fitClip,
  LogMelSpectrogram,
  maskBands,
  melFilterbank,
  mixupWithBatch,
  randomResizeCrop,
  randomWindow,
  readAudioEmbedInputs,
  resample,
  type AudioViewConfig,
} from '../src/modalities/audio/index.js';
import { loadJsonlManifest } from '../src/data/jsonl.js';
import { registeredMediaFields, registeredModalities } from '../src/modalities/registry.js';
import { cli, TINY, useCliFixture } from './cli_fixture.js';
import { assertClose } from './helpers.js';
import { pythonWithTorch } from './python_torch.js';
import { scratchDir } from './scratch_dir.js';

const { WaveFile } = wavefile;

interface Reference {
  settings: { sampleRate: number; nFft: number; windowLength: number; hopLength: number; nMels: number; fMin: number; fMax: number };
  chirp: { seconds: number; f0: number; f1: number; amplitude: number };
  test_signal: { seconds: number; tones_hz: number[]; amplitudes: number[] };
  log_mel: { shape: [number, number]; data: number[] };
  filterbank_sums: number[];
  resample: { from: number; to: number; data: number[] }[];
}

const reference = JSON.parse(readFileSync(new URL('../../tests/fixtures/audio/reference.json', import.meta.url), 'utf8')) as Reference;

/** The script's chirp: float64 formula, rounded to float32. */
function chirp(sampleRate: number): Float32Array {
  const { seconds, f0, f1, amplitude } = reference.chirp;
  return Float32Array.from({ length: Math.round(seconds * sampleRate) }, (_, i) => {
    const t = i / sampleRate;
    return amplitude * Math.sin(2 * Math.PI * (f0 * t + ((f1 - f0) * t * t) / (2 * seconds)));
  });
}

/** The script's sum of tones at `sampleRate`. */
function testSignal(sampleRate: number): Float32Array {
  const { seconds, tones_hz, amplitudes } = reference.test_signal;
  return Float32Array.from({ length: Math.round(seconds * sampleRate) }, (_, n) =>
    tones_hz.reduce((sum, f, k) => sum + amplitudes[k]! * Math.sin((2 * Math.PI * f * n) / sampleRate), 0),
  );
}

const sine = (hz: number, sampleRate: number, samples: number, amplitude = 1): Float32Array =>
  Float32Array.from({ length: samples }, (_, n) => amplitude * Math.sin((2 * Math.PI * hz * n) / sampleRate));

const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>, from = 0, to = a.length): number => {
  let worst = 0;
  for (let i = from; i < to; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  return worst;
};

const tmp = scratchDir('byol-audio-');

/** A 16-bit PCM WAV file of `channels` copies of `samples` (in [-1, 1]). */
function writeWav(file: string, samples: Float32Array, sampleRate: number, channels = 1): string {
  const wav = new WaveFile();
  const pcm = Int16Array.from(samples, (v) => Math.round(Math.max(-1, Math.min(1, v)) * 32767));
  wav.fromScratch(channels, sampleRate, '16', channels === 1 ? pcm : Array.from({ length: channels }, () => pcm));
  writeFileSync(file, wav.toBuffer());
  return file;
}

// ---- features ----

test('log-mel of a chirp matches torch.stft with the HTK mel filterbank (python/audio_reference.py)', () => {
  const logMel = new LogMelSpectrogram(reference.settings);
  const x = chirp(reference.settings.sampleRate);
  const ours = logMel.compute(tensor(x, { shape: [1, x.length] }));
  assert.deepEqual(ours.shape, [1, ...reference.log_mel.shape]);
  const values = ours.toFlatArray();
  const ref = reference.log_mel.data;
  // Where the chirp has energy (mel power above 1e-3, a sixth of the values: a chirp fills a few
  // bands per frame) float32 agrees with float64 to 1e-4; in the near-silent bands float32's FFT
  // rounding, relative to the loudest bin, moves log(power) more, down to the floor log(eps).
  let loud = 0;
  let worstLoud = 0;
  let worstQuiet = 0;
  ref.forEach((r, i) => {
    const d = Math.abs(values[i]! - r);
    if (r > Math.log(1e-3)) {
      loud++;
      worstLoud = Math.max(worstLoud, d);
    } else worstQuiet = Math.max(worstQuiet, d);
  });
  assert.ok(loud > ref.length / 8, `${loud} loud values of ${ref.length}`);
  assert.ok(worstLoud < 1e-4, `loud bands differ by ${worstLoud}`);
  assert.ok(worstQuiet < 1e-2, `quiet bands differ by ${worstQuiet}`);
});

test("the mel filterbank's filters sum as torchaudio's melscale_fbanks (HTK, no normalisation)", () => {
  const { sampleRate, nFft, nMels, fMin, fMax } = reference.settings;
  const fb = melFilterbank({ sampleRate, nFft, nMels, fMin, fMax });
  assert.equal(fb.length, (nFft / 2 + 1) * nMels);
  const sums = Array.from({ length: nMels }, (_, m) => {
    let s = 0;
    for (let k = 0; k <= nFft / 2; k++) s += fb[k * nMels + m]!;
    return s;
  });
  reference.filterbank_sums.forEach((r, m) => assert.ok(Math.abs(sums[m]! - r) < 1e-5 * Math.max(1, r), `filter ${m}: ${sums[m]} vs ${r}`));
  // Triangles peak at 1 (no area normalisation): the widest filters reach it on a bin almost exactly.
  assert.ok(Math.max(...fb) > 0.99 && Math.max(...fb) <= 1);
});

// ---- resampling ----

test("resampling matches torchaudio's sinc_interp_hann algorithm at 44.1, 22.05 and 8 kHz → 16 kHz", () => {
  for (const r of reference.resample) {
    const ours = resample(testSignal(r.from), r.from, r.to).toFlatArray();
    assert.equal(ours.length, r.data.length, `${r.from} Hz: length`);
    const worst = maxAbsDiff(ours, r.data);
    assert.ok(worst < 2e-6, `${r.from} Hz → ${r.to} Hz differs by ${worst}`);
  }
});

test('a 1 kHz sine resampled 44100 → 16000 is the 1 kHz sine at 16 kHz; a 10 kHz tone above the new Nyquist is filtered out', () => {
  const seconds = 0.5;
  const y = resample(sine(1000, 44100, 44100 * seconds), 44100, 16000).toFlatArray();
  assert.equal(y.length, 16000 * seconds);
  // Away from the ends (where the filter sees the zeros outside the clip).
  const expected = sine(1000, 16000, y.length);
  const worst = maxAbsDiff(y, expected, 100, y.length - 100);
  assert.ok(worst < 2e-3, `1 kHz sine off by ${worst}`);
  const aliased = resample(sine(10000, 44100, 44100 * seconds), 44100, 16000).toFlatArray();
  const rms = Math.sqrt(aliased.slice(100, -100).reduce((s, v) => s + v * v, 0) / (aliased.length - 200));
  assert.ok(rms < 1e-2, `a 10 kHz tone (RMS 0.71) leaves RMS ${rms} after resampling to 16 kHz`);
});

test('coprime rates (32000 → 16001: taps gathered per output, no phase kernel) resample a tone to the same tone', () => {
  // gcd 1 would need 16001 phase kernels of 32 026 taps, so each output gathers its own taps.
  const x = sine(300, 32000, 16000);
  const viaGather = resample(x, 32000, 16001).toFlatArray();
  const expected = sine(300, 16001, viaGather.length);
  assert.ok(maxAbsDiff(viaGather, expected, 100, viaGather.length - 100) < 2e-3);
});

test('a window of outputs (start, length) equals those outputs of the whole resampling', () => {
  const x = testSignal(44100);
  const whole = resample(x, 44100, 16000).toFlatArray();
  const part = resample(x, 44100, 16000, { start: 777, length: 500 }).toFlatArray();
  assert.ok(maxAbsDiff(part, whole.slice(777, 1277)) < 1e-6);
});

// ---- the length rule ----

test('clips are brought to clipSeconds: longer ones keep their start (or centre), shorter ones are zero-padded at the end', () => {
  const ramp = Float32Array.from({ length: 100 }, (_, i) => i / 100);
  assert.deepEqual(Array.from(fitClip({ samples: ramp, sampleRate: 1000 }, 1000, 40)), Array.from(ramp.slice(0, 40)));
  assert.deepEqual(Array.from(fitClip({ samples: ramp, sampleRate: 1000 }, 1000, 40, 'centre')), Array.from(ramp.slice(30, 70)));
  const padded = fitClip({ samples: ramp.slice(0, 10), sampleRate: 1000 }, 1000, 40);
  assert.deepEqual(Array.from(padded), [...Array.from(ramp.slice(0, 10)), ...new Array(30).fill(0)]);
  // With resampling: 2 s at 48 kHz → the centre 1 s at 16 kHz is the sine from 0.5 s on.
  const long = fitClip({ samples: sine(500, 48000, 96000), sampleRate: 48000 }, 16000, 16000, 'centre');
  const expected = Float32Array.from({ length: 16000 }, (_, n) => Math.sin(2 * Math.PI * 500 * (n / 16000 + 0.5)));
  assert.ok(maxAbsDiff(long, expected) < 2e-3);
});

// ---- views ----

const small = new AudioModality({ sampleRate: 16000, clipSeconds: 0.25, nMels: 16, featureDim: 8, channels: 4 });

function batchOf(n: number, seed = 0): Tensor {
  manualSeed(seed);
  return randn([n, 1, 16, small.frames]);
}

test('views keep the batch shape, repeat with the same seed and differ with another', () => {
  const batch = batchOf(4);
  const [a1, a2] = small.views(batch, new Generator(7));
  const [b1, b2] = small.views(batch, new Generator(7));
  const [c1] = small.views(batch, new Generator(8));
  assert.deepEqual(a1.shape, batch.shape);
  assert.deepEqual(a2.shape, batch.shape);
  assert.deepEqual(a1.toFlatArray(), b1.toFlatArray());
  assert.deepEqual(a2.toFlatArray(), b2.toFlatArray());
  assert.notDeepEqual(a1.toFlatArray(), a2.toFlatArray());
  assert.notDeepEqual(a1.toFlatArray(), c1.toFlatArray());
});

test('views with every augmentation off give the spectrograms back', () => {
  const off: AudioViewConfig = {
    mixupRatio: 0,
    virtualCropScale: [1, 1],
    freqScale: [1, 1],
    timeScale: [1, 1],
    freqMasks: 0,
    freqMaskWidth: 0,
    timeMasks: 0,
    timeMaskWidth: 0,
  };
  const batch = batchOf(3);
  assert.ok(maxAbsDiff(audioView(batch, off, new Generator(0)).toFlatArray(), batch.toFlatArray()) < 1e-5);
});

test('trainWindowSeconds: collate keeps the longer window, each training view cuts clipSeconds out of it at random, evalInput keeps crop’s', async () => {
  // A ramp: frame t of the log-mel grows with t, so a window's first frame tells where it started.
  const rate = 16000;
  const ramp = Float32Array.from({ length: rate }, (_, n) => Math.sin(2 * Math.PI * 300 * (n / rate)) * (0.01 + n / rate));
  const settings = { sampleRate: rate, clipSeconds: 0.25, nMels: 16, featureDim: 8, channels: 4, view: { ...BYOLA_VIEW, mixupRatio: 0 } };
  const windowed = new AudioModality({ ...settings, trainWindowSeconds: 0.5 });
  assert.equal(windowed.frames, 26);
  assert.equal(windowed.windowFrames, 51);
  const batch = await windowed.collate([ramp, ramp.slice(0, 2000)]);
  assert.deepEqual(batch.shape, [2, 1, 16, 51]);
  // evalInput is the first clipSeconds ('start'), or the middle ('centre'), of the collated window.
  assert.deepEqual(windowed.evalInput(batch).toFlatArray(), batch.narrow(3, 0, 26).toFlatArray());
  const centred = new AudioModality({ ...settings, trainWindowSeconds: 0.5, crop: 'centre' });
  assert.deepEqual(centred.evalInput(batch).toFlatArray(), batch.narrow(3, 12, 26).toFlatArray());
  const [v1, v2] = windowed.views(batch, new Generator(3));
  assert.deepEqual(v1.shape, [2, 1, 16, 26]);
  assert.deepEqual(v2.shape, [2, 1, 16, 26]);
  // Without the window nothing changes: views draw as before and evalInput is the batch.
  const plain = new AudioModality(settings);
  assert.equal(plain.windowFrames, plain.frames);
  const plainBatch = await plain.collate([ramp]);
  assert.equal(plain.evalInput(plainBatch), plainBatch);
  assert.throws(
    () => new AudioModality({ ...settings, trainWindowSeconds: 0.2 }),
    /trainWindowSeconds 0.2 is shorter than clipSeconds 0.25/,
  );
});

test('randomWindow cuts each clip at its own uniform start, the same for the same seed, and refuses a window that does not fit', () => {
  // Frame t of every clip holds the value t, so each window's first value is its start.
  const length = 10;
  const frames = 4;
  const x = tensor(
    Array.from({ length: 64 * 2 * length }, (_, i) => i % length),
    { shape: [64, 1, 2, length] },
  );
  const cut = randomWindow(x, frames, new Generator(5));
  assert.deepEqual(cut.shape, [64, 1, 2, frames]);
  const rows = cut.toFlatArray();
  const starts = new Set<number>();
  for (let k = 0; k < 64; k++) {
    const start = rows[k * 2 * frames]!;
    starts.add(start);
    for (let b = 0; b < 2; b++)
      assert.deepEqual(rows.slice((k * 2 + b) * frames, (k * 2 + b + 1) * frames), [start, start + 1, start + 2, start + 3]);
  }
  // 64 draws from the 7 possible starts 0..6 reach both ends (a chance of about 2e-4 of missing one).
  assert.deepEqual([...starts].sort(), [0, 1, 2, 3, 4, 5, 6]);
  assert.deepEqual(randomWindow(x, frames, new Generator(5)).toFlatArray(), rows);
  assert.throws(() => randomWindow(x, 11, new Generator(0)), /a window of 11 frames does not fit spectrograms of 10/);
});

test('mixup mixes each clip with another clip of the batch in the energy domain, with a weight below the ratio', () => {
  // Clip 0 is constant 0 and clip 1 constant 2: each mixed clip is log((1 − λ)·e^own + λ·e^other).
  const batch = tensor([0, 2], { shape: [2, 1, 1, 1] })
    .expand(2, 1, 4, 5)
    .contiguous();
  const mixed = mixupWithBatch(batch, 0.4, new Generator(3)).toFlatArray();
  const [own0, own1] = [0, 2];
  const lambda0 = (Math.exp(mixed[0]!) - Math.exp(own0)) / (Math.exp(own1) - Math.exp(own0));
  const lambda1 = (Math.exp(mixed[20]!) - Math.exp(own1)) / (Math.exp(own0) - Math.exp(own1));
  for (const lambda of [lambda0, lambda1]) assert.ok(lambda > 1e-4 && lambda < 0.4, `λ = ${lambda}`);
  assert.ok(
    mixed.slice(0, 20).every((v) => Math.abs(v - mixed[0]!) < 1e-6),
    'one λ per clip',
  );
});

/** A batch of `clips` time ramps 1..frames over 8 mel bands. */
const timeRamps = (clips: number, frames: number): Tensor =>
  tensor(
    Array.from({ length: frames }, (_, t) => t + 1),
    { shape: [1, 1, 1, frames] },
  )
    .expand(clips, 1, 8, frames)
    .contiguous();

test('the random resize crop resizes a box of whole frames back to the clip length (aligned corners)', () => {
  // Time crops of ⌊0.5 · 40⌋ = 20 frames at a uniform left edge 0..20, frequency untouched: output
  // frame t samples input frame left + t·19/39, so a ramp 1..40 becomes left + 1 + t·19/39.
  const frames = 40;
  const halfTime = {
    virtualCropScale: [1, 1] as [number, number],
    freqScale: [1, 1] as [number, number],
    timeScale: [0.5, 0.5] as [number, number],
  };
  const v = randomResizeCrop(timeRamps(6, frames), halfTime, new Generator(5)).toFlatArray();
  const lefts = new Set<number>();
  for (let clip = 0; clip < 6; clip++) {
    const row = v.slice(clip * 8 * frames, clip * 8 * frames + frames);
    const left = row[0]! - 1;
    assert.ok(Math.abs(left - Math.round(left)) < 1e-4 && left >= 0 && left <= 20, `clip ${clip} starts at frame ${left}`);
    row.forEach((x, t) => assert.ok(Math.abs(x - (left + 1 + (t * 19) / 39)) < 1e-4, `clip ${clip}, frame ${t}: ${x}`));
    lefts.add(Math.round(left));
  }
  assert.ok(lefts.size >= 3, `left edges ${[...lefts]}`);
});

test("BYOL-A's crop reaches into the zero canvas: a ramp rises, then fades to zero where the box leaves the clip", () => {
  const frames = 40;
  const v = randomResizeCrop(timeRamps(8, frames), BYOLA_VIEW, new Generator(5)).toFlatArray();
  let faded = 0;
  for (let clip = 0; clip < 8; clip++) {
    const row = v.slice(clip * 8 * frames, clip * 8 * frames + frames);
    // Unimodal: rising up to the largest value, falling after it (into the canvas's zeros).
    const peak = row.indexOf(Math.max(...row));
    for (let t = 1; t <= peak; t++) assert.ok(row[t]! >= row[t - 1]! - 1e-4, `clip ${clip} not rising at ${t}`);
    for (let t = peak + 1; t < frames; t++) assert.ok(row[t]! <= row[t - 1]! + 1e-4, `clip ${clip} not falling at ${t}`);
    assert.ok(row.every((x) => x >= -1e-5 && x <= frames + 1e-4));
    if (row[0]! < 0.5 || row[frames - 1]! < 0.5) faded++;
  }
  assert.ok(faded >= 2, `${faded} of 8 crops reach the canvas`);
});

test('SpecAugment masks zero one band of at most maxWidth contiguous mel bins and leave the rest', () => {
  const batch = batchOf(8).add(10); // no value is 0 before masking
  const masked = maskBands(batch, 2, 1, 5, new Generator(2)).toFlatArray();
  const original = batch.toFlatArray();
  const frames = small.frames;
  let maskedClips = 0;
  for (let clip = 0; clip < 8; clip++) {
    const zeroRows: number[] = [];
    for (let f = 0; f < 16; f++) {
      const at = (clip * 16 + f) * frames;
      const row = masked.slice(at, at + frames);
      if (row.every((x) => x === 0)) zeroRows.push(f);
      else assert.deepEqual(row, original.slice(at, at + frames));
    }
    assert.ok(zeroRows.length <= 5);
    if (zeroRows.length > 0) maskedClips++;
    zeroRows.forEach((f, i) => i === 0 || assert.equal(f, zeroRows[i - 1]! + 1));
  }
  assert.ok(maskedClips >= 4, `${maskedClips} of 8 clips masked`);
});

// ---- encoder ----

test("BYOL-A's encoder maps [N, 1, mels, frames] to [N, featureDim] and passes gradients to its first convolution and the input", () => {
  manualSeed(1);
  const encoder = new ByolaAudioEncoder({ nMels: 16, channels: 4, featureDim: 8 });
  const x = randn([3, 1, 16, 26]).requiresGrad_();
  const y = encoder.forward(x);
  assert.deepEqual(y.shape, [3, 8]);
  y.square().sum().backward();
  const firstConv = encoder.namedParameters().find(([name]) => name === 'block1.0.weight')![1];
  assert.ok(firstConv.grad!.abs().sum().item() > 0);
  assert.ok(x.grad!.abs().sum().item() > 0);
  // The fully connected layers see frequency × channels per step: 16 / 8 bands × 4 channels.
  assert.deepEqual(
    encoder
      .namedParameters()
      .filter(([name]) => name.startsWith('fc.'))
      .map(([name, p]) => [name, p.shape]),
    [
      ['fc.0.weight', [8, 8]],
      ['fc.0.bias', [8]],
      ['fc.3.weight', [8, 8]],
      ['fc.3.bias', [8]],
    ],
  );
  assert.throws(() => encoder.forward(randn([1, 1, 12, 26])), /expected log-mel \[N, 1, 16, T ≥ 8\]/);
});

// ---- bad audio ----

test('every PCM and float bit depth, little- and big-endian, decodes to the values wavefile itself unpacks, channels averaged', () => {
  // Stereo, a full-scale ramp on the left and its reverse on the right, in each encoding's own range.
  const ranges: Record<string, [number, number]> = {
    '8': [0, 255],
    '16': [-32768, 32767],
    '24': [-8388608, 8388607],
    '32': [-2147483648, 2147483647],
    '32f': [-1, 1],
    '64': [-1, 1],
  };
  for (const [bitDepth, [lo, hi]] of Object.entries(ranges)) {
    const n = 9;
    const left = Array.from({ length: n }, (_, i) => lo + ((hi - lo) * i) / (n - 1));
    const ints = bitDepth === '32f' || bitDepth === '64' ? left : left.map(Math.round);
    const right = [...ints].reverse();
    for (const rifx of [false, true]) {
      const wav = new WaveFile();
      wav.fromScratch(2, 8000, bitDepth, [ints, right]);
      if (rifx) wav.toRIFX();
      const bytes = wav.toBuffer();
      const reference = new WaveFile(bytes).getSamples(false, Float64Array) as unknown as Float64Array[];
      const { offset, scale } = {
        '8': { offset: 128, scale: 128 },
        '16': { offset: 0, scale: 2 ** 15 },
        '24': { offset: 0, scale: 2 ** 23 },
        '32': { offset: 0, scale: 2 ** 31 },
      }[bitDepth] ?? { offset: 0, scale: 1 };
      const expected = Array.from({ length: n }, (_, t) => ((reference[0]![t]! + reference[1]![t]!) / 2 - offset) / scale);
      const { samples, sampleRate } = decodeWav(bytes, `${bitDepth}.wav`);
      assert.equal(sampleRate, 8000);
      assert.ok(
        samples.every((v, t) => Math.abs(v - expected[t]!) < 1e-7),
        `${bitDepth} bits${rifx ? ', RIFX' : ''}: ${Array.from(samples)} vs ${expected}`,
      );
    }
  }
});

test('bad audio is an AudioDecodeError naming the file: not a WAV, empty, truncated, absurd rate or channels, NaN samples', async () => {
  const dir = join(tmp, 'bad');
  mkdirSync(dir);
  const good = readFileSync(writeWav(join(dir, 'good.wav'), sine(440, 16000, 1600), 16000));
  const patched = (name: string, patch: (b: Buffer) => void): string => {
    const b = Buffer.from(good);
    patch(b);
    writeFileSync(join(dir, name), b);
    return join(dir, name);
  };
  const nanWav = new WaveFile();
  nanWav.fromScratch(1, 16000, '32f', new Float32Array([0.1, Number.NaN, 0.2, 0.3]));
  writeFileSync(join(dir, 'nan.wav'), nanWav.toBuffer());
  const cases: [string, RegExp][] = [
    [(writeFileSync(join(dir, 'text.wav'), 'hello, not audio'), join(dir, 'text.wav')), /not a WAV file/],
    [(writeFileSync(join(dir, 'empty.wav'), ''), join(dir, 'empty.wav')), /empty/],
    [(writeFileSync(join(dir, 'header.wav'), good.subarray(0, 20)), join(dir, 'header.wav')), /truncated/],
    [
      (writeFileSync(join(dir, 'data.wav'), good.subarray(0, 1000)), join(dir, 'data.wav')),
      /truncated: the data chunk declares 3200 bytes/,
    ],
    [patched('rate0.wav', (b) => b.writeUInt32LE(0, 24)), /sample rate 0 Hz/],
    [patched('rate1M.wav', (b) => b.writeUInt32LE(1_000_000, 24)), /sample rate 1000000 Hz/],
    [patched('channels0.wav', (b) => b.writeUInt16LE(0, 22)), /0 channels/],
    [patched('channels999.wav', (b) => b.writeUInt16LE(999, 22)), /999 channels/],
    [join(dir, 'nan.wav'), /sample 1 .* is NaN/],
    [join(dir, 'missing.wav'), /no such audio file/],
    [dir, /a directory, not an audio file/],
  ];
  for (const [file, problem] of cases) {
    await assert.rejects(
      small.collate([join(dir, 'good.wav'), file]),
      (err: Error) => {
        assert.ok(err instanceof AudioDecodeError, `${file}: ${err.name}: ${err.message}`);
        assert.ok(err.message.startsWith(`${file}: `), err.message);
        assert.match(err.message, problem);
        assert.match(err.message, /\(audio item 1\)/);
        return true;
      },
      file,
    );
  }
  // The good file alone decodes.
  assert.deepEqual((await small.collate([join(dir, 'good.wav')])).shape, [1, 1, 16, small.frames]);
});

// ---- the modality ----

test("fit measures the training clips' log-mel mean and std; collate normalises with them; restore gives the same batches", async () => {
  const files = [220, 440, 880].map((hz) => writeWav(join(tmp, `tone-${hz}.wav`), sine(hz, 22050, 22050 / 2, 0.5), 22050));
  const stereo = writeWav(join(tmp, 'stereo.wav'), sine(330, 8000, 4000, 0.5), 8000, 2);
  const settings = { clipSeconds: 0.25, nMels: 16, featureDim: 8, channels: 4 };
  const fitted = (await audioModality.fit(settings, [...files, stereo])) as AudioModality;
  const raw = fitted.logMel([...files, stereo]).toFlatArray();
  const mean = raw.reduce((a, b) => a + b, 0) / raw.length;
  const std = Math.sqrt(raw.reduce((a, b) => a + (b - mean) ** 2, 0) / raw.length);
  assert.ok(Math.abs(fitted.normalization.mean - mean) < 1e-4 * Math.abs(mean));
  assert.ok(Math.abs(fitted.normalization.std - std) < 1e-4 * std);
  const batch = await fitted.collate([...files, stereo]);
  const normalised = batch.toFlatArray();
  assert.ok(Math.abs(normalised.reduce((a, b) => a + b, 0) / normalised.length) < 1e-4);
  const restored = audioModality.restore(JSON.parse(JSON.stringify(fitted.toJSON())));
  assert.deepEqual((await restored.collate(files)).toFlatArray(), normalised.slice(0, 3 * 16 * fitted.frames));
  assert.deepEqual(fitted.toJSON().settings.view, {
    ...BYOLA_VIEW,
    virtualCropScale: [1, 1.5],
    freqScale: [0.6, 1.5],
    timeScale: [0.6, 1.5],
  });
});

test("collate makes on the feature thread what normalizedLogMel makes on this one; a bad item's type is refused here", async () => {
  const files = [330, 660].map((hz) => writeWav(join(tmp, `thread-${hz}.wav`), sine(hz, 22050, 22050 / 3, 0.5), 22050));
  const modality = new AudioModality({ clipSeconds: 0.25, nMels: 16 }, { mean: -3, std: 2 });
  const samples = Float32Array.from(sine(500, 16000, 4000, 0.25));
  const items = [...files, samples];
  const batch = await modality.collate(items);
  assert.deepEqual(batch.shape, [3, 1, 16, modality.frames]);
  const here = modality.normalizedLogMel(items);
  const there = batch.toFlatArray();
  assert.equal(there.length, here.length);
  // The same computation up to float32 rounding: the threads run libtorch with other thread counts
  // (and, after other tests, other floating-point modes), which moves the near-silent bands' logs
  // by up to about 1e-4 (alone: 0).
  const worst = there.reduce((w, v, i) => Math.max(w, Math.abs(v - here[i]!) / Math.max(1, Math.abs(here[i]!))), 0);
  assert.ok(worst <= 1e-3, `the thread and this thread differ by ${worst}`);
  assert.deepEqual((await modality.collate([])).shape, [0, 1, 16, modality.frames]);
  await assert.rejects(modality.collate([files[0]!, 42 as unknown as string]), /audio item 1 is number; expected a WAV file path/);
});

test("rawItems reads a record's audio relative to the manifest's folder; embed reads a folder, a .wav or a .jsonl", () => {
  const item = { id: 'a', captions: [], extra: { audio: 'clips/a.wav' }, folder: '/data/set' };
  assert.deepEqual(audioModality.rawItems(item), ['/data/set/clips/a.wav']);
  assert.deepEqual(audioModality.rawItems({ ...item, extra: { audio: ['x.wav', '/abs/y.wav'] } }), ['/data/set/x.wav', '/abs/y.wav']);
  assert.deepEqual(audioModality.rawItems({ id: 'b', captions: ['no audio'] }), []);

  const folder = join(tmp, 'embed');
  mkdirSync(join(folder, 'sub'), { recursive: true });
  writeWav(join(folder, 'b.wav'), sine(440, 16000, 1600), 16000);
  writeWav(join(folder, 'sub', 'a.wav'), sine(440, 16000, 1600), 16000);
  writeFileSync(join(folder, 'notes.txt'), 'not audio');
  const fromFolder = readAudioEmbedInputs(folder);
  assert.deepEqual(fromFolder.ids, ['b.wav', join('sub', 'a.wav')]);
  assert.deepEqual(fromFolder.items, [join(folder, 'b.wav'), join(folder, 'sub', 'a.wav')]);
  writeFileSync(join(folder, 'q.jsonl'), `${JSON.stringify({ id: 'q1', audio: 'sub/a.wav' })}\n`);
  assert.deepEqual(readAudioEmbedInputs(join(folder, 'q.jsonl')), { ids: ['q1'], items: [join(folder, 'sub', 'a.wav')] });
  assert.throws(() => readAudioEmbedInputs(join(folder, 'notes.txt')), /--modality audio reads a folder of \.wav files/);
});

// ---- training through the command ----

const fixture = useCliFixture();
const COLOURS = ['red', 'green', 'blue', 'yellow', 'purple', 'orange'];
const AUDIO_TINY = ['audio.clipSeconds=0.25', 'audio.nMels=16', 'audio.channels=4', 'audio.featureDim=8'];

test('a manifest where half the items have a clip trains the audio terms with the others; embed --modality audio reads WAV files', () => {
  const coco = JSON.parse(readFileSync(fixture.annotations, 'utf8')) as {
    images: { id: number; file_name: string }[];
    annotations: { image_id: number; caption: string }[];
  };
  mkdirSync(join(fixture.dir, 'clips'));
  // Each colour has its tone (at 22.05 kHz, resampled); every other item has a clip.
  const lines = coco.images.map((image, i) => {
    const colour = COLOURS.indexOf(image.file_name.split('-')[0]!);
    const record: Record<string, unknown> = {
      id: image.file_name,
      image: `images/${image.file_name}`,
      text: coco.annotations.filter((a) => a.image_id === image.id).map((a) => a.caption),
    };
    if (i % 2 === 0) {
      writeWav(join(fixture.dir, 'clips', `${i}.wav`), sine(300 * (colour + 1), 22050, 22050 / 4, 0.5), 22050);
      record.audio = `clips/${i}.wav`;
    }
    return JSON.stringify(record);
  });
  const manifest = join(fixture.dir, 'with-audio.jsonl');
  writeFileSync(manifest, `${lines.join('\n')}\n`);
  const run = join(fixture.dir, 'run-audio');
  // Training views draw from 0.4 s (the clips are 0.25 s: zero-padded); the export test below checks the window's evaluation in PyTorch.
  const trained = cli(
    'train',
    '--data',
    `jsonl:${manifest}`,
    '--steps',
    '2',
    '--out',
    run,
    ...TINY,
    ...AUDIO_TINY,
    'audio.trainWindowSeconds=0.4',
  );
  assert.equal(trained.status, 0, trained.stderr);
  const specs = JSON.parse(readFileSync(join(run, 'modalities.json'), 'utf8')) as { name: string; state?: { mean: number; std: number } }[];
  assert.deepEqual(
    specs.map((s) => s.name),
    ['image', 'text', 'audio'],
  );
  const audioState = specs[2]!.state!;
  assert.ok(Number.isFinite(audioState.mean) && audioState.std > 0, JSON.stringify(audioState));
  const steps = readFileSync(join(run, 'metrics.jsonl'), 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as { loss: number; terms: Record<string, number> });
  assert.equal(steps.length, 2);
  for (const step of steps) {
    assert.ok(Number.isFinite(step.loss));
    for (const term of ['cross/audio->image', 'cross/text->audio', 'cross/image->text'])
      assert.ok(step.terms[term]! > 0, `${term}: ${step.terms[term]}`);
  }

  const out = join(fixture.dir, 'clips-embedded.jsonl');
  const embedded = cli(
    'embed',
    '--checkpoint',
    run,
    '--modality',
    'audio',
    '--input',
    join(fixture.dir, 'clips'),
    '--out',
    out,
    '--threads',
    '1',
  );
  assert.equal(embedded.status, 0, embedded.stderr);
  const rows = readFileSync(out, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as { id: string; embedding: number[] });
  assert.equal(rows.length, 12);
  assert.ok(rows.every((r) => r.id.endsWith('.wav') && r.embedding.every(Number.isFinite)));
  // Items 0 and 2 are both red (the same tone, so the same embedding up to the rounding of their
  // places in the batch), item 4 is green.
  const byId = new Map(rows.map((r) => [r.id, r.embedding]));
  assertClose(byId.get('0.wav')!, byId.get('2.wav')!, 1e-6);
  const apart = Math.max(...byId.get('0.wav')!.map((v, j) => Math.abs(v - byId.get('4.wav')![j]!)));
  assert.ok(apart > 1e-3, `red and green clips embed apart (max difference ${apart})`);
});

test('export carries audio: the check passes on the saved clips, and encode_audio of 8/16/24-bit, float and stereo WAVs matches embed to 1e-4', () => {
  // The run the test above trained (tests in a file run in order).
  const run = join(fixture.dir, 'run-audio');
  const out = join(fixture.dir, 'export-audio');
  const exported = cli('export', '--checkpoint', run, '--out', out);
  assert.equal(exported.status, 0, exported.stderr);
  assert.match(exported.stdout + exported.stderr, /audio/, 'the check holds audio samples');
  const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')) as { audio: Record<string, number> };
  assert.equal(config.audio.sampleRate, 16000);
  assert.ok(config.audio.std! > 0);
  const check = spawnSync(pythonWithTorch(), ['scripts/load_export.py', out], { encoding: 'utf8' });
  assert.equal(check.status, 0, check.stdout + check.stderr);
  assert.match(check.stdout, /^audio: /m);

  // Clips in every encoding the module reads, at rates that need resampling, longer and shorter than the clip.
  const clips = join(fixture.dir, 'clips-encodings');
  mkdirSync(clips);
  const tone = sine(500, 44100, 44100 / 2, 0.6);
  const encodings: [string, number, string, Float32Array][] = [
    ['pcm8.wav', 8000, '8', sine(700, 8000, 1000, 0.5)],
    ['pcm24-stereo.wav', 44100, '24', tone],
    ['float32.wav', 16000, '32f', sine(900, 16000, 6000, 0.4)],
    ['pcm32.wav', 22050, '32', sine(300, 22050, 22050, 0.3)],
  ];
  for (const [name, rate, depth, samples] of encodings) {
    const wav = new WaveFile();
    const full = depth === '32f' ? 1 : 2 ** (Number(depth) - 1) - 1;
    const values = Array.from(samples, (v) => (depth === '32f' ? v : Math.round(v * full) + (depth === '8' ? 128 : 0)));
    const channels = name.includes('stereo') ? 2 : 1;
    wav.fromScratch(channels, rate, depth, channels === 1 ? values : [values, values.map((v) => v / 2)]);
    writeFileSync(join(clips, name), wav.toBuffer());
  }
  const embeddedFile = join(fixture.dir, 'clips-encodings.jsonl');
  const embedded = cli('embed', '--checkpoint', run, '--modality', 'audio', '--input', clips, '--out', embeddedFile, '--threads', '1');
  assert.equal(embedded.status, 0, embedded.stderr);
  const rows = readFileSync(embeddedFile, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { id: string; embedding: number[] });
  const code = `
import json, sys
from byol_align_export import load_export
model = load_export(sys.argv[1])
print(json.dumps(model.encode_audio([sys.argv[2] + "/" + i for i in json.loads(sys.argv[3])]).tolist()))`;
  const py = spawnSync(
    pythonWithTorch(),
    ['-c', `import sys; sys.path.insert(0, 'python')\n${code}`, out, clips, JSON.stringify(rows.map((r) => r.id))],
    {
      encoding: 'utf8',
    },
  );
  assert.equal(py.status, 0, py.stderr);
  const theirs = JSON.parse(py.stdout) as number[][];
  assert.equal(theirs.length, encodings.length);
  rows.forEach((row, i) => assertClose(theirs[i]!, row.embedding, 1e-4, 1e-4));
});

test('loading a JSONL manifest checks every clip as images are: present, a WAV, inside the folder; errors name line and file, skip counts', () => {
  const folder = join(tmp, 'manifest-checks');
  mkdirSync(join(folder, 'clips'), { recursive: true });
  writeWav(join(folder, 'clips', 'good.wav'), sine(440, 16000, 1600), 16000);
  writeFileSync(join(folder, 'clips', 'text.wav'), 'not a clip at all');
  writeWav(join(tmp, 'outside.wav'), sine(440, 16000, 1600), 16000);
  const records = [
    { id: 'good', text: 'a tone', audio: 'clips/good.wav' },
    { id: 'two', text: 'a tone', audio: ['clips/good.wav', 'clips/good.wav'] },
    { id: 'missing', text: 'a tone', audio: 'clips/none.wav' },
    { id: 'text', text: 'a tone', audio: ['clips/good.wav', 'clips/text.wav'] },
    { id: 'outside', text: 'a tone', audio: '../outside.wav' },
    { id: 'number', text: 'a tone', audio: 7 },
    { id: 'empty', text: 'a tone', audio: [] },
  ];
  const manifest = join(folder, 'm.jsonl');
  writeFileSync(manifest, records.map((r) => JSON.stringify(r)).join('\n'));
  const options = { modalityFields: registeredModalities(), mediaFields: registeredMediaFields() };
  const expected: [number, RegExp][] = [
    [3, /m\.jsonl:3\b.*audio clip file .*clips\/none\.wav does not exist/],
    [4, /m\.jsonl:4\b.*audio clip .*clips\/text\.wav is not a WAV file/],
    [5, /m\.jsonl:5\b.*audio clip .*outside\.wav is outside the manifest's folder .*data\.allowOutsideImages/],
    [6, /m\.jsonl:6\b.*"audio" must be a non-empty string/],
    [7, /m\.jsonl:7\b.*"audio" is an empty list/],
  ];
  for (const [line, message] of expected) {
    const only = join(folder, `only-${line}.jsonl`);
    writeFileSync(only, `${'\n'.repeat(line - 1)}${JSON.stringify(records[line - 1])}\n`);
    assert.throws(
      () => loadJsonlManifest(only, options),
      (err: Error) => message.test(err.message.replace(`only-${line}`, 'm')),
    );
  }
  const skipped = loadJsonlManifest(manifest, { ...options, onBadRecord: 'skip' });
  assert.deepEqual(
    skipped.items.map((i) => i.id),
    ['good', 'two'],
  );
  assert.deepEqual(skipped.skipped, { 'bad-media': 2, 'outside-media-folder': 1, 'invalid-field': 2 });
  // With data.allowOutsideImages the clip outside is read; without the check, files are trusted.
  const outside = loadJsonlManifest(manifest, { ...options, onBadRecord: 'skip', allowOutsideImages: true });
  assert.ok(outside.items.some((i) => i.id === 'outside'));
  const trusted = loadJsonlManifest(manifest, { ...options, onBadRecord: 'skip', checkImages: false });
  assert.deepEqual(
    trusted.items.map((i) => i.id),
    ['good', 'two', 'missing', 'text'],
  );
});
