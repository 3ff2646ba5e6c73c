// Checkpoint files: one safetensors file per checkpoint holding the trainer's tensors, with the
// config, the modalities (tokenizer included), the trainer state and a SHA-256 checksum in its
// metadata. Writes are atomic (temporary file, fsync, rename, fsync of the folder), so a crash or
// a kill during a write leaves the previous checkpoint whole; loads verify the checksum, so a
// truncated or altered file is refused rather than half-loaded. A checkpoint is device-independent:
// its tensors are written from the CPU (the trainer's state dict is CPU copies, and
// serializeSafetensors copies any other to the CPU) and read as CPU tensors, which the loader
// copies onto its own device; the device that trained it is recorded, for the message on resume.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, statSync, unlinkSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { DType, Tensor } from '../engine/index.js';
import { fewNames, nonFiniteKeys } from '../engine/finite.js';
import { parseSafetensors, safetensorsData, serializeSafetensors } from '../engine/safetensors.js';
import { writeFileAtomic } from '../engine/atomic_write.js';

export { writeFileAtomic };

export const CHECKPOINT_FORMAT = 'byol-align-checkpoint/1';

/** What a checkpoint holds besides tensors; every field is JSON. */
export interface CheckpointMeta {
  config: unknown;
  modalities: unknown;
  trainer: unknown;
  /** Steps trained when it was written. */
  step: number;
  /** The embedding space retrieval was best in at the last validation ('projection' or 'encoder'); eval and embed default to it. */
  retrievalSpace?: string;
  /** The device that trained up to this checkpoint ('cpu', 'cuda:0'); absent in checkpoints from before devices, all CPU. */
  device?: string;
}

export interface Checkpoint extends CheckpointMeta {
  file: string;
  tensors: Map<string, Tensor>;
}

/** A checkpoint that cannot be used: missing, truncated, altered, or not a checkpoint at all. */
export class CheckpointError extends Error {
  override readonly name = 'CheckpointError';
}

const STEP_FILE = /^step-(\d{9})\.safetensors$/;

/** The file name of the checkpoint at `step`: step-000001234.safetensors (sorts by step). */
export function checkpointName(step: number): string {
  return `step-${String(step).padStart(9, '0')}.safetensors`;
}

/** What a trainer's state holds: float32 weights and moments, int64 BatchNorm batch counters. */
const CHECKPOINT_DTYPES: readonly DType[] = ['float32', 'int64'];

/**
 * What is wrong with a checkpoint's tensors (an unexpected dtype, NaN or ±Infinity), or
 * undefined: the same test before a write and after a read, so a checkpoint that could not be
 * used is never written and one that was forged or corrupted behind a valid checksum is refused.
 */
function tensorProblem(tensors: ReadonlyMap<string, Tensor>): string | undefined {
  const wrongType = [...tensors].filter(([, t]) => !CHECKPOINT_DTYPES.includes(t.dtype));
  if (wrongType.length > 0) {
    const described = wrongType.map(([k, t]) => `${k} (${t.dtype})`);
    return `tensors of an unexpected dtype: ${fewNames(described)}; a checkpoint holds ${CHECKPOINT_DTYPES.join(' and ')} tensors`;
  }
  const nonFinite = nonFiniteKeys(tensors);
  if (nonFinite.length > 0) return `tensors holding NaN or infinite values: ${fewNames(nonFinite)}`;
  return undefined;
}

/** The JSON value of a metadata entry, checked by `valid`; throws a CheckpointError naming the entry. */
function metadataJson(
  file: string,
  metadata: Record<string, string>,
  key: string,
  expected: string,
  valid: (v: unknown) => boolean,
): unknown {
  const text = metadata[key];
  if (text === undefined) throw new CheckpointError(`${file}: the checkpoint has no "${key}" metadata; use an earlier checkpoint`);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new CheckpointError(`${file}: its "${key}" metadata is not valid JSON (${(err as Error).message}); use an earlier checkpoint`);
  }
  if (!valid(value)) throw new CheckpointError(`${file}: its "${key}" metadata must be ${expected}; use an earlier checkpoint`);
  return value;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** SHA-256 over the metadata (without the checksum, keys in order) and the tensor bytes. */
function checksum(metadata: Record<string, string>, data: Uint8Array): string {
  const hash = createHash('sha256');
  for (const key of Object.keys(metadata).sort()) if (key !== 'sha256') hash.update(`${key}\0${metadata[key]}\0`);
  hash.update(data);
  return hash.digest('hex');
}

/**
 * Writes the checkpoint of `meta.step` into `dir` and deletes all but the newest `keep`; returns
 * its path.
 *
 * @example
 * const { tensors, meta } = trainer.stateDict();
 * saveCheckpoint('runs/a/checkpoints', tensors, { config, modalities, trainer: meta, step: trainer.step }, 3);
 */
export function saveCheckpoint(dir: string, tensors: Map<string, Tensor>, meta: CheckpointMeta, keep = Infinity): string {
  const file = join(dir, checkpointName(meta.step));
  // Refused before anything is written or rotated away: the older checkpoints stay the usable ones.
  const problem = tensorProblem(tensors);
  if (problem !== undefined) throw new CheckpointError(`${file}: not written, the state holds ${problem}`);
  const metadata: Record<string, string> = {
    format: CHECKPOINT_FORMAT,
    step: String(meta.step),
    ...(meta.retrievalSpace === undefined ? {} : { retrievalSpace: meta.retrievalSpace }),
    ...(meta.device === undefined ? {} : { device: meta.device }),
    config: JSON.stringify(meta.config),
    modalities: JSON.stringify(meta.modalities),
    trainer: JSON.stringify(meta.trainer),
  };
  // The tensor data does not depend on the metadata (see safetensorsData), so the checksum of a
  // first serialisation is the checksum of the file written with it.
  metadata.sha256 = checksum(metadata, safetensorsData(serializeSafetensors(tensors, metadata)));
  writeFileAtomic(file, serializeSafetensors(tensors, metadata));
  const all = listCheckpoints(dir);
  for (const old of all.slice(0, Math.max(0, all.length - keep))) unlinkSync(old);
  return file;
}

/** The checkpoint files in `dir`, oldest first (temporary files of unfinished writes are not listed). */
export function listCheckpoints(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => STEP_FILE.test(f))
    .sort()
    .map((f) => join(dir, f));
}

/**
 * Reads and verifies a checkpoint file: its checksum, then its content (config, modalities and
 * trainer metadata, the step, tensor dtypes, finite values); throws a CheckpointError saying what
 * is wrong.
 */
export function loadCheckpoint(file: string): Checkpoint {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (err) {
    throw new CheckpointError(`${file}: cannot read the checkpoint (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
  let parsed: ReturnType<typeof parseSafetensors>;
  try {
    parsed = parseSafetensors(bytes, file);
  } catch (err) {
    throw new CheckpointError(`${file}: not a readable checkpoint, truncated or corrupted (${(err as Error).message})`);
  }
  const metadata = parsed.metadata;
  const dispose = (): void => parsed.tensors.forEach((t) => t.dispose());
  if (metadata.format !== CHECKPOINT_FORMAT) {
    dispose();
    throw new CheckpointError(
      `${file}: not a byol-align checkpoint (format ${JSON.stringify(metadata.format)}, expected ${CHECKPOINT_FORMAT})`,
    );
  }
  if (metadata.sha256 !== checksum(metadata, safetensorsData(bytes, file))) {
    dispose();
    throw new CheckpointError(`${file}: checksum mismatch, the file is corrupted; use an earlier checkpoint`);
  }
  try {
    return { file, tensors: parsed.tensors, ...checkedContent(file, metadata, parsed.tensors) };
  } catch (err) {
    dispose();
    throw err;
  }
}

/** A verified checkpoint's metadata, parsed, once its content holds up; else a CheckpointError. */
function checkedContent(file: string, metadata: Record<string, string>, tensors: ReadonlyMap<string, Tensor>): CheckpointMeta {
  // A checksum only proves the bytes are those written; a forged file recomputes it.
  const stepText = metadata.step ?? '';
  const step = Number(stepText);
  if (!/^\d+$/.test(stepText) || !Number.isSafeInteger(step)) {
    throw new CheckpointError(`${file}: its "step" metadata must be a non-negative integer, got ${JSON.stringify(metadata.step)}`);
  }
  const named = STEP_FILE.exec(basename(file));
  if (named !== null && Number(named[1]) !== step)
    throw new CheckpointError(`${file}: the file name says step ${Number(named[1])}, its metadata step ${step}`);
  const config = metadataJson(file, metadata, 'config', 'a JSON object', isObject);
  const modalities = metadataJson(
    file,
    metadata,
    'modalities',
    'a non-empty list of modality specs (objects with a "name")',
    (v) => Array.isArray(v) && v.length > 0 && v.every((m) => isObject(m) && typeof m.name === 'string'),
  );
  const trainer = metadataJson(file, metadata, 'trainer', `a JSON object with "step": ${step}`, (v) => isObject(v) && v.step === step);
  const problem = tensorProblem(tensors);
  if (problem !== undefined) throw new CheckpointError(`${file}: the checkpoint holds ${problem}; use an earlier checkpoint`);
  if (metadata.device !== undefined && !/^[a-z]+(:\d+)?$/.test(metadata.device))
    throw new CheckpointError(
      `${file}: its "device" metadata must name a device such as cpu or cuda:0, got ${JSON.stringify(metadata.device)}`,
    );
  return {
    step,
    ...(metadata.retrievalSpace === undefined ? {} : { retrievalSpace: metadata.retrievalSpace }),
    ...(metadata.device === undefined ? {} : { device: metadata.device }),
    config,
    modalities,
    trainer,
  };
}

/**
 * A checkpoint file, or a run directory (then its newest checkpoint that verifies; broken newer
 * ones are reported through `onSkip` and passed over).
 */
export function resolveCheckpoint(path: string, onSkip?: (error: CheckpointError) => void): Checkpoint {
  if (!existsSync(path)) throw new CheckpointError(`${path}: no such checkpoint file or run directory`);
  if (!statSync(path).isDirectory()) return loadCheckpoint(path);
  const dir = existsSync(join(path, 'checkpoints')) ? join(path, 'checkpoints') : path;
  const files = listCheckpoints(dir);
  for (const file of files.reverse()) {
    try {
      return loadCheckpoint(file);
    } catch (err) {
      if (!(err instanceof CheckpointError)) throw err;
      onSkip?.(err);
    }
  }
  throw new CheckpointError(`${path}: no loadable checkpoint in ${dir}${files.length > 0 ? ` (${files.length} broken)` : ''}`);
}
