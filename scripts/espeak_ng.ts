// Speaking captions with Debian's espeak-ng (https://github.com/espeak-ng/espeak-ng) for the spoken
// icon data set (scripts/build-speech-dataset.ts): the voices used, each clip's voice, speed and
// pitch drawn from a seed, and the espeak-ng processes run at most a few at a time. espeak-ng is a
// formant synthesiser with no randomness of its own, so one text with one voice, speed and pitch
// gives the same WAV bytes on every run (checked in tests/speech_dataset.test.ts).
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { openSync, readSync, closeSync, statSync } from 'node:fs';

/**
 * The accents: espeak-ng's own English voices (`espeak-ng --voices=en`, the gmw/ files; the mb/
 * ones need MBROLA, which Debian's espeak-ng does not install).
 */
export const ESPEAK_ACCENTS = [
  'en-gb',
  'en-us',
  'en-gb-x-rp',
  'en-gb-scotland',
  'en-gb-x-gbclan',
  'en-gb-x-gbcwmd',
  'en-029',
  'en-us-nyc',
] as const;

/**
 * The voice variants (`espeak-ng --voices=variant`, written `<accent>+<variant>`): the accent's own
 * voice (male), four male and five female variants, so that half the voices are female.
 */
export const ESPEAK_VARIANTS = ['', 'm1', 'm2', 'm3', 'm4', 'f1', 'f2', 'f3', 'f4', 'f5'] as const;

/** Speaking rate in words per minute, inclusive (espeak-ng's default is 175). */
export const SPEED_WPM_RANGE = [140, 200] as const;
/** Pitch on espeak-ng's 0–99 scale, inclusive (default 50). */
export const PITCH_RANGE = [25, 75] as const;

/** How one clip is spoken. */
export interface ClipSettings {
  /** espeak-ng's -v argument, `<accent>` or `<accent>+<variant>`. */
  voice: string;
  speedWpm: number;
  pitch: number;
}

/** Every voice a clip may get, accents × variants: 80. */
export function espeakVoices(): string[] {
  return ESPEAK_ACCENTS.flatMap((accent) => ESPEAK_VARIANTS.map((variant) => (variant === '' ? accent : `${accent}+${variant}`)));
}

/**
 * The settings and caption of the clip named `key` under `seed`: each drawn from its own 32 bits
 * of SHA-256(`${seed}:${key}`), so they depend on nothing but the seed and the key, and two clips
 * of one caption (two keys) differ unless all four draws collide (1 in 80 × 61 × 51).
 *
 * @example
 * const { settings, captionIndex } = drawClip(0, 'train:54', 5);
 * // settings: { voice: 'en-gb-x-rp+f3', speedWpm: 171, pitch: 38 } (say); captionIndex in 0..4
 */
export function drawClip(seed: number, key: string, captionCount: number): { settings: ClipSettings; captionIndex: number } {
  const digest = createHash('sha256').update(`${seed}:${key}`, 'utf8').digest();
  const draw = (slot: number, count: number): number => digest.readUInt32BE(4 * slot) % count;
  const voices = espeakVoices();
  const [minSpeed, maxSpeed] = SPEED_WPM_RANGE;
  const [minPitch, maxPitch] = PITCH_RANGE;
  return {
    settings: {
      voice: voices[draw(0, voices.length)]!,
      speedWpm: minSpeed + draw(1, maxSpeed - minSpeed + 1),
      pitch: minPitch + draw(2, maxPitch - minPitch + 1),
    },
    captionIndex: draw(3, captionCount),
  };
}

/** Thrown when the espeak-ng program cannot be run at all. */
export class EspeakMissingError extends Error {
  constructor(program: string, cause: string) {
    super(
      `cannot run espeak-ng as "${program}" (${cause}); install it with \`apt-get install espeak-ng\` ` +
        `(scripts/setup.sh does) or name the program with --espeak PATH`,
    );
    this.name = 'EspeakMissingError';
  }
}

interface Finished {
  code: number | null;
  stdout: string;
  stderr: string;
}

function runProgram(program: string, args: readonly string[], input: string): Promise<Finished> {
  return new Promise((resolve, reject) => {
    const child = spawn(program, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    child.on('error', (err: NodeJS.ErrnoException) => reject(new EspeakMissingError(program, err.code ?? err.message)));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    // a program that died at start closes stdin under us; the 'error' or 'close' event reports it
    child.stdin.on('error', () => {});
    child.stdin.end(input, 'utf8');
  });
}

/**
 * The version espeak-ng reports (e.g. "1.51"); throws {@link EspeakMissingError} when `program`
 * cannot be run. Called before anything is written, so a missing program costs nothing.
 */
export async function espeakVersion(program: string): Promise<string> {
  const { code, stdout, stderr } = await runProgram(program, ['--version'], '');
  const version = /text-to-speech:\s*(\S+)/.exec(stdout)?.[1];
  if (code !== 0 || version === undefined) {
    throw new EspeakMissingError(program, `"--version" exited ${code} with ${JSON.stringify((stdout + stderr).trim().slice(0, 200))}`);
  }
  return version;
}

/** What a WAV file's header says; enough to check a clip and state its length. */
export interface WavFacts {
  sampleRateHz: number;
  channels: number;
  bitsPerSample: number;
  dataBytes: number;
}

/**
 * Reads the canonical 44-byte header espeak-ng writes (RIFF, WAVE, a 16-byte "fmt " chunk, then
 * "data"); throws naming `file` on anything else, or on a clip with no samples.
 */
export function readWavFacts(file: string): WavFacts {
  const header = Buffer.alloc(44);
  const fd = openSync(file, 'r');
  let read: number;
  try {
    read = readSync(fd, header, 0, 44, 0);
  } finally {
    closeSync(fd);
  }
  const tag = (at: number): string => header.toString('latin1', at, at + 4);
  if (read < 44 || tag(0) !== 'RIFF' || tag(8) !== 'WAVE' || tag(12) !== 'fmt ' || tag(36) !== 'data') {
    throw new Error(`${file}: not the RIFF/WAVE file espeak-ng writes (${read} header bytes)`);
  }
  const facts = {
    channels: header.readUInt16LE(22),
    sampleRateHz: header.readUInt32LE(24),
    bitsPerSample: header.readUInt16LE(34),
    dataBytes: header.readUInt32LE(40),
  };
  if (facts.dataBytes === 0 || statSync(file).size < 44 + facts.dataBytes) {
    throw new Error(`${file}: the WAV holds ${statSync(file).size - 44} of the ${facts.dataBytes} sample bytes its header states`);
  }
  return facts;
}

/**
 * Speaks `text` into the WAV file `file` (espeak-ng -w; 16-bit mono at espeak-ng's rate, 22050 Hz).
 * The text goes in on standard input, so no caption is ever read as an option.
 */
export async function speakToWav(program: string, text: string, settings: ClipSettings, file: string): Promise<WavFacts> {
  const args = ['-w', file, '-v', settings.voice, '-s', String(settings.speedWpm), '-p', String(settings.pitch), '--stdin'];
  const { code, stderr } = await runProgram(program, args, text);
  if (code !== 0) {
    throw new Error(`espeak-ng ${args.join(' ')} exited ${code} on ${JSON.stringify(text)}: ${stderr.trim() || '(no message)'}`);
  }
  return readWavFacts(file);
}

/**
 * Runs `work` on every task with at most `concurrency` running at once, and resolves to the results
 * in task order. After a failure no new task starts; the first error is thrown once those running
 * have ended.
 */
export async function mapBounded<T, R>(
  tasks: readonly T[],
  concurrency: number,
  work: (task: T, index: number) => Promise<R>,
): Promise<R[]> {
  if (!Number.isInteger(concurrency) || concurrency < 1)
    throw new RangeError(`mapBounded: concurrency must be a positive integer, got ${concurrency}`);
  const results = new Array<R>(tasks.length);
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async (): Promise<void> => {
    while (failure === undefined && next < tasks.length) {
      const index = next++;
      try {
        results[index] = await work(tasks[index]!, index);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, tasks.length) }, worker));
  if (failure !== undefined) throw failure.error;
  return results;
}
