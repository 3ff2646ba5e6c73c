// WAV files → mono float32 samples at the file's own rate. The RIFF/WAVE container is parsed by
// wavefile (11.0.0, MIT, no dependencies) rather than by hand: its chunk walking covers the
// variants real files come in (WAVE_FORMAT_EXTENSIBLE, odd-sized chunks, LIST/fact chunks, RF64).
// What it leaves to us, and what this file adds, is refusing files that would decode to garbage
// or hang later: no data, a data chunk shorter than it says, a sample rate or channel count no
// recorder makes, samples that are not finite. Every refusal is an AudioDecodeError naming the file.
// FLAC is not read: the maintained FLAC decoders on npm are WebAssembly builds, not pure JS.
import wavefile from 'wavefile';
import { NotRegularFileError, readRegularFile } from '../../data/safe_read.js';
import { BadItemError } from '../bad_item.js';

const { WaveFile } = wavefile;

/** The highest sample rate accepted (Hz): 384 kHz is the top rate of studio converters; more is a broken header. */
export const MAX_SAMPLE_RATE = 384_000;
/** The most channels accepted: WAVE_FORMAT_EXTENSIBLE's channel mask names 18 speakers; 64 leaves room for ambisonics. */
export const MAX_CHANNELS = 64;

/** A clip as decoded: its samples, the channels averaged, in [-1, 1] for integer encodings. */
export interface DecodedAudio {
  samples: Float32Array;
  /** The file's sample rate, in Hz. */
  sampleRate: number;
}

/**
 * An audio file that cannot be used; the message starts with the file. A BadItemError: training
 * under data.onBadRecord 'skip' leaves the clip out and counts it.
 */
export class AudioDecodeError extends BadItemError {
  override readonly name: string = 'AudioDecodeError';
}

/** Integer PCM bit depths and the divisor that maps them to [-1, 1); 8-bit WAV is unsigned, centred on 128. */
const PCM_SCALE: Record<string, { offset: number; scale: number }> = {
  '8': { offset: 128, scale: 128 },
  '16': { offset: 0, scale: 2 ** 15 },
  '24': { offset: 0, scale: 2 ** 23 },
  '32': { offset: 0, scale: 2 ** 31 },
  '32f': { offset: 0, scale: 1 },
  '64': { offset: 0, scale: 1 },
};

/** True when the first bytes (12 suffice) are a RIFF, RIFX or RF64 container of type WAVE. */
export function looksLikeWav(head: Uint8Array): boolean {
  const ascii = (from: number, to: number): string => String.fromCharCode(...head.subarray(from, to));
  return head.length >= 12 && ['RIFF', 'RIFX', 'RF64'].includes(ascii(0, 4)) && ascii(8, 12) === 'WAVE';
}

/**
 * Decodes WAV bytes to mono float32 (the channels' mean). `file` names the source in errors.
 *
 * @example
 * const { samples, sampleRate } = decodeWav(readFileSync('a.wav'), 'a.wav'); // Float32Array, 44100
 */
export function decodeWav(bytes: Uint8Array, file: string): DecodedAudio {
  if (bytes.length === 0) throw new AudioDecodeError(file, 'the file is empty, not a WAV file');
  if (!looksLikeWav(bytes))
    throw new AudioDecodeError(file, 'not a WAV file (it does not start with a RIFF/WAVE header); the audio modality reads WAV files');
  let wav: InstanceType<typeof WaveFile>;
  try {
    wav = new WaveFile(bytes);
  } catch (err) {
    throw new AudioDecodeError(file, `not a readable WAV file (${(err as Error).message}); the header may be truncated`, { cause: err });
  }
  const fmt = wav.fmt as { audioFormat: number; numChannels: number; sampleRate: number; blockAlign: number };
  const data = wav.data as { chunkSize: number; samples: Uint8Array };
  const { numChannels, sampleRate } = fmt;
  if (!Number.isInteger(sampleRate) || sampleRate <= 0 || sampleRate > MAX_SAMPLE_RATE)
    throw new AudioDecodeError(file, `sample rate ${sampleRate} Hz in the header is not in 1..${MAX_SAMPLE_RATE}; the header is corrupt`);
  if (!Number.isInteger(numChannels) || numChannels <= 0 || numChannels > MAX_CHANNELS)
    throw new AudioDecodeError(file, `${numChannels} channels in the header, expected 1..${MAX_CHANNELS}; the header is corrupt`);
  if (data.samples.length < data.chunkSize)
    throw new AudioDecodeError(
      file,
      `truncated: the data chunk declares ${data.chunkSize} bytes but the file holds ${data.samples.length}`,
    );

  // A-law, µ-law and IMA ADPCM become 16-bit PCM first (wavefile's own decoders).
  if (wav.bitDepth === '8a') wav.fromALaw();
  else if (wav.bitDepth === '8m') wav.fromMuLaw();
  else if (wav.bitDepth === '4') wav.fromIMAADPCM();
  const pcm = PCM_SCALE[wav.bitDepth];
  if (pcm === undefined)
    throw new AudioDecodeError(file, `unsupported WAV encoding (format code ${fmt.audioFormat}, ${wav.bitDepth} bits); use PCM or float`);
  if (fmt.blockAlign <= 0) throw new AudioDecodeError(file, `block align ${fmt.blockAlign} in the header; the header is corrupt`);

  const interleaved = unpackSamples(data.samples, wav.bitDepth, wav.container === 'RIFX');
  const frames = Math.floor(interleaved.length / numChannels);
  if (frames === 0) throw new AudioDecodeError(file, 'the WAV file holds no samples');
  const samples = new Float32Array(frames);
  for (let t = 0; t < frames; t++) {
    let sum = 0;
    for (let c = 0; c < numChannels; c++) sum += interleaved[t * numChannels + c]!;
    const value = (sum / numChannels - pcm.offset) / pcm.scale;
    if (!Number.isFinite(value))
      throw new AudioDecodeError(file, `sample ${t} (at ${(t / sampleRate).toFixed(3)} s) is ${value}, not a finite number`);
    samples[t] = value;
  }
  return { samples, sampleRate };
}

/**
 * The data chunk's interleaved samples as numbers. wavefile's getSamples does the same through a
 * generic bit-unpacker at about 10 ms per 5 s clip, which starved training; reading the fixed-width
 * values through a DataView takes about 0.5 ms (measured on the spoken icon clips).
 */
function unpackSamples(bytes: Uint8Array, bitDepth: string, bigEndian: boolean): Float64Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const little = !bigEndian;
  const width = { '8': 1, '16': 2, '24': 3, '32': 4, '32f': 4, '64': 8 }[bitDepth];
  if (width === undefined) throw new RangeError(`unpackSamples: bit depth ${bitDepth}`);
  const out = new Float64Array(Math.floor(bytes.byteLength / width));
  const read: (at: number) => number =
    bitDepth === '8'
      ? (at) => view.getUint8(at)
      : bitDepth === '16'
        ? (at) => view.getInt16(at, little)
        : bitDepth === '24'
          ? (at) => {
              const [lo, hi] = little
                ? [view.getUint16(at, true), view.getInt8(at + 2)]
                : [view.getUint16(at + 1, false), view.getInt8(at)];
              return hi * 65536 + lo;
            }
          : bitDepth === '32'
            ? (at) => view.getInt32(at, little)
            : bitDepth === '32f'
              ? (at) => view.getFloat32(at, little)
              : (at) => view.getFloat64(at, little);
  for (let i = 0; i < out.length; i++) out[i] = read(i * width);
  return out;
}

/**
 * Reads and decodes one WAV file. A missing or unreadable file, or a FIFO or device named like one
 * (read without blocking, see readRegularFile), is an AudioDecodeError naming it.
 *
 * @example
 * const clip = readWavFile('clips/a1.wav');
 */
export function readWavFile(file: string): DecodedAudio {
  let bytes: Buffer;
  try {
    bytes = readRegularFile(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const problem =
      err instanceof NotRegularFileError
        ? `${err.kind}, not an audio file`
        : code === 'ENOENT'
          ? 'no such audio file'
          : `cannot read it (${code ?? String(err)})`;
    throw new AudioDecodeError(file, problem, { cause: err });
  }
  return decodeWav(bytes, file);
}
