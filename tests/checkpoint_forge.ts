// Forged checkpoints for the tests of checkpoint content validation: a real checkpoint with its
// tensors or metadata changed and its SHA-256 recomputed, so the checksum alone cannot tell.
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import type { Tensor } from '../src/index.js';
import { parseSafetensors, serializeSafetensors } from '../src/engine/safetensors.js';

/**
 * The checksum as docs/reliability.md and src/run/checkpoint.ts define it, written out again here
 * so a forgery does not lean on the code under test: SHA-256 over each metadata entry but sha256
 * (sorted by key, as `key\0value\0`) and then the tensor data after the header.
 */
function checksum(metadata: Record<string, string>, file: Buffer): string {
  const hash = createHash('sha256');
  for (const key of Object.keys(metadata).sort()) if (key !== 'sha256') hash.update(`${key}\0${metadata[key]}\0`);
  hash.update(file.subarray(8 + Number(file.readBigUInt64LE(0))));
  return hash.digest('hex');
}

/** Copies checkpoint `from` to `to` with `edit` applied to its tensors and metadata, and a valid checksum. */
export function forgeCheckpoint(
  from: string,
  to: string,
  edit: (tensors: Map<string, Tensor>, metadata: Record<string, string>) => void,
): void {
  const { tensors, metadata } = parseSafetensors(readFileSync(from), from);
  edit(tensors, metadata);
  delete metadata.sha256;
  metadata.sha256 = checksum(metadata, serializeSafetensors(tensors, metadata));
  writeFileSync(to, serializeSafetensors(tensors, metadata));
}
