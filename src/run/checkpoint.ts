// Checkpoint files: one safetensors file per checkpoint holding the trainer's tensors, with the
// config, the modalities (tokenizer included), the trainer state and a SHA-256 checksum in its
// metadata. Writes are atomic (temporary file, fsync, rename, fsync of the folder), so a crash or
// a kill during a write leaves the previous checkpoint whole; loads verify the checksum, so a
// truncated or altered file is refused rather than half-loaded.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, statSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import type { Tensor } from '../engine/index.js';
import { parseSafetensors, serializeSafetensors } from '../engine/safetensors.js';
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

/** SHA-256 over the metadata (without the checksum, keys in order) and the tensor bytes. */
function checksum(metadata: Record<string, string>, data: Uint8Array): string {
  const hash = createHash('sha256');
  for (const key of Object.keys(metadata).sort()) if (key !== 'sha256') hash.update(`${key}\0${metadata[key]}\0`);
  hash.update(data);
  return hash.digest('hex');
}

/** The tensor data of safetensors bytes: everything after the 8-byte length and the header. */
function dataSection(bytes: Uint8Array): Uint8Array {
  const headerLength = Number(Buffer.from(bytes.buffer, bytes.byteOffset, 8).readBigUInt64LE(0));
  return bytes.subarray(8 + headerLength);
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
  const metadata: Record<string, string> = {
    format: CHECKPOINT_FORMAT,
    step: String(meta.step),
    config: JSON.stringify(meta.config),
    modalities: JSON.stringify(meta.modalities),
    trainer: JSON.stringify(meta.trainer),
  };
  // The tensor bytes do not depend on the metadata (offsets count from the data's start), so the
  // checksum of a first serialisation is the checksum of the file written with it.
  metadata.sha256 = checksum(metadata, dataSection(serializeSafetensors(tensors, metadata)));
  const file = join(dir, checkpointName(meta.step));
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

/** Reads and verifies a checkpoint file; throws a CheckpointError saying what is wrong. */
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
  if (metadata.sha256 !== checksum(metadata, dataSection(bytes))) {
    dispose();
    throw new CheckpointError(`${file}: checksum mismatch, the file is corrupted; use an earlier checkpoint`);
  }
  return {
    file,
    tensors: parsed.tensors,
    step: Number(metadata.step),
    config: JSON.parse(metadata.config!),
    modalities: JSON.parse(metadata.modalities!),
    trainer: JSON.parse(metadata.trainer!),
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
