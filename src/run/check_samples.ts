// A few training samples kept in the run directory, so that `byol-align export` can write its
// self-check (check.safetensors) without the training data:
//   RUN_DIR/check-samples/samples.json   {"format": "byol-align-check-samples/1",
//                                          "image": ["image-0.png", ...], "text": ["a red heart", ...],
//                                          "vector": [[0.1, 2.5, ...], ...], "audio": ["audio-0.wav", ...]}
//   RUN_DIR/check-samples/image-N.png    the images, upright, at most 256 px a side, alpha kept
//   RUN_DIR/check-samples/audio-N.wav    the clips, copied as they are (a clip is small)
// Each list is optional and holds at most 8 items. The check only needs inputs the model can take,
// not the training files themselves, so images are stored small and losslessly as PNG.
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import sharp from 'sharp';
import { writeFileAtomic } from '../engine/atomic_write.js';
import type { PairedItem } from '../data/paired.js';
import { audioModality } from '../modalities/audio/index.js';

export const CHECK_SAMPLES_DIR = 'check-samples';
export const CHECK_SAMPLES_FORMAT = 'byol-align-check-samples/1';
/** Items kept per modality. */
export const CHECK_SAMPLES_PER_MODALITY = 8;
const IMAGE_MAX_SIDE = 256;

/** Raw items per modality name: image file paths, caption strings, vectors (arrays of numbers), WAV file paths. */
export type CheckItems = Record<string, unknown[]>;

/** A samples.json that cannot be read back, or items that cannot be saved. */
export class CheckSamplesError extends Error {
  override readonly name = 'CheckSamplesError';
}

const KNOWN = ['image', 'text', 'vector', 'audio'] as const;

/** The first items of a data set, as check items: image paths, one caption each, vectors, the first clip each. */
export function sampleCheckItems(items: readonly PairedItem[]): CheckItems {
  const sample = items.slice(0, CHECK_SAMPLES_PER_MODALITY);
  const withAudio = items.filter((i) => i.extra?.audio !== undefined).slice(0, CHECK_SAMPLES_PER_MODALITY);
  return {
    image: sample.flatMap((i) => (i.image === undefined ? [] : [i.image])),
    text: sample.flatMap((i) => i.captions.slice(0, 1)),
    vector: sample.flatMap((i) => (i.extra?.vector === undefined ? [] : [i.extra.vector])),
    audio: withAudio.flatMap((i) => audioModality.rawItems(i).slice(0, 1)),
  };
}

/**
 * Saves the first {@link CHECK_SAMPLES_PER_MODALITY} items of each modality into
 * RUN_DIR/check-samples/, replacing what was there (the folder is swapped in whole).
 *
 * @example
 * await saveCheckSamples('runs/icons', { image: ['icons/heart.png'], text: ['a red heart'] });
 */
export async function saveCheckSamples(runDir: string, items: CheckItems): Promise<void> {
  for (const key of Object.keys(items)) {
    if (!(KNOWN as readonly string[]).includes(key))
      throw new CheckSamplesError(`saveCheckSamples: unknown modality '${key}'; known: ${KNOWN.join(', ')}`);
  }
  const images = (items.image ?? []).slice(0, CHECK_SAMPLES_PER_MODALITY);
  const texts = (items.text ?? []).slice(0, CHECK_SAMPLES_PER_MODALITY);
  const vectors = (items.vector ?? []).slice(0, CHECK_SAMPLES_PER_MODALITY).map((v, i) => {
    const values = ArrayBuffer.isView(v) ? Array.from(v as Float32Array) : v;
    if (!Array.isArray(values) || !values.every((x) => typeof x === 'number' && Number.isFinite(x)))
      throw new CheckSamplesError(`saveCheckSamples: vector item ${i} is not an array of finite numbers`);
    return values as number[];
  });
  texts.forEach((t, i) => {
    if (typeof t !== 'string') throw new CheckSamplesError(`saveCheckSamples: text item ${i} is ${typeof t}, expected a string`);
  });

  const dir = join(runDir, CHECK_SAMPLES_DIR);
  const staging = `${dir}.tmp-${process.pid}`;
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging, { recursive: true });
  const imageFiles: string[] = [];
  for (const [i, path] of images.entries()) {
    if (typeof path !== 'string') throw new CheckSamplesError(`saveCheckSamples: image item ${i} is ${typeof path}, expected a file path`);
    const file = `image-${i}.png`;
    await sharp(path, { autoOrient: true })
      .resize(IMAGE_MAX_SIDE, IMAGE_MAX_SIDE, { fit: 'inside', withoutEnlargement: true })
      .png()
      .toFile(join(staging, file));
    imageFiles.push(file);
  }
  const audioFiles: string[] = [];
  for (const [i, path] of (items.audio ?? []).slice(0, CHECK_SAMPLES_PER_MODALITY).entries()) {
    if (typeof path !== 'string') throw new CheckSamplesError(`saveCheckSamples: audio item ${i} is ${typeof path}, expected a file path`);
    const file = `audio-${i}.wav`;
    copyFileSync(path, join(staging, file));
    audioFiles.push(file);
  }
  const manifest: Record<string, unknown> = { format: CHECK_SAMPLES_FORMAT };
  if (imageFiles.length > 0) manifest.image = imageFiles;
  if (texts.length > 0) manifest.text = texts;
  if (vectors.length > 0) manifest.vector = vectors;
  if (audioFiles.length > 0) manifest.audio = audioFiles;
  writeFileAtomic(join(staging, 'samples.json'), Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`));
  rmSync(dir, { recursive: true, force: true });
  renameSync(staging, dir);
}

/**
 * The items saved by {@link saveCheckSamples} in `runDir` (image paths made absolute), or
 * undefined when the run has none. A damaged samples.json is a CheckSamplesError naming the field.
 *
 * @example
 * const check = loadCheckSamples('runs/icons'); // { image: ['/…/check-samples/image-0.png', …], text: […] }
 */
export function loadCheckSamples(runDir: string): CheckItems | undefined {
  const dir = join(runDir, CHECK_SAMPLES_DIR);
  const file = join(dir, 'samples.json');
  if (!existsSync(file)) return undefined;
  let manifest: Record<string, unknown>;
  try {
    manifest = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch (err) {
    throw new CheckSamplesError(`${file}: not JSON (${(err as Error).message})`);
  }
  if (typeof manifest !== 'object' || manifest === null || manifest.format !== CHECK_SAMPLES_FORMAT)
    throw new CheckSamplesError(`${file}: "format" must be "${CHECK_SAMPLES_FORMAT}"`);
  const list = (field: string, ok: (v: unknown) => boolean, expected: string): unknown[] => {
    const value = manifest[field] ?? [];
    if (!Array.isArray(value) || !value.every(ok)) throw new CheckSamplesError(`${file}: "${field}" must be a list of ${expected}`);
    return value;
  };
  const images = list('image', (v) => typeof v === 'string' && /^image-\d+\.png$/.test(v), 'image-N.png file names').map((f) =>
    resolve(dir, f as string),
  );
  const clips = list('audio', (v) => typeof v === 'string' && /^audio-\d+\.wav$/.test(v), 'audio-N.wav file names').map((f) =>
    resolve(dir, f as string),
  );
  for (const [field, paths] of [
    ['image', images],
    ['audio', clips],
  ] as const)
    for (const path of paths) if (!existsSync(path)) throw new CheckSamplesError(`${file}: "${field}" lists ${path}, which is missing`);
  const items: CheckItems = {
    image: images,
    audio: clips,
    text: list('text', (v) => typeof v === 'string', 'strings'),
    vector: list('vector', (v) => Array.isArray(v) && v.every((x) => typeof x === 'number'), 'arrays of numbers'),
  };
  for (const key of KNOWN) if (items[key]!.length === 0) delete items[key];
  return items;
}
