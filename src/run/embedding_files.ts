// Writing embeddings: JSON Lines ({"id", "embedding"} per line), NumPy .npy (float32 [N, d], with
// the ids in FILE.ids.txt beside it) or safetensors (tensor "embeddings", ids in the metadata).
// Files are written atomically, so an interrupted run never leaves half a file.
import { extname } from 'node:path';
import type { Tensor } from '../engine/index.js';
import { serializeSafetensors } from '../engine/safetensors.js';
import { writeFileAtomic } from './checkpoint.js';
import { checkOutputFile } from './run_dir.js';

/** The .npy (format 1.0) bytes of a float32 matrix. */
export function npyBytes(values: Float32Array, rows: number, cols: number): Buffer {
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${rows}, ${cols}), }`;
  // Magic (6) + version (2) + length (2) + header + '\n' is padded to a multiple of 64 bytes.
  const total = Math.ceil((10 + header.length + 1) / 64) * 64;
  header = header.padEnd(total - 10 - 1, ' ') + '\n';
  const head = Buffer.alloc(10);
  head.write('\x93NUMPY', 0, 'latin1');
  head[6] = 1;
  head[7] = 0;
  head.writeUInt16LE(header.length, 8);
  return Buffer.concat([head, Buffer.from(header, 'latin1'), Buffer.from(values.buffer, values.byteOffset, values.byteLength)]);
}

/** The embeddings as JSON Lines text. */
export function jsonlText(ids: readonly string[], embeddings: Tensor): string {
  const [n, d] = embeddings.shape as [number, number];
  const flat = embeddings.toFlatArray();
  let out = '';
  for (let i = 0; i < n; i++) out += `${JSON.stringify({ id: ids[i], embedding: flat.slice(i * d, (i + 1) * d) })}\n`;
  return out;
}

/** The files writeEmbeddings writes for `file`: .npy has its ids beside it. */
export function embeddingFiles(file: string): string[] {
  return extname(file).toLowerCase() === '.npy' ? [file, `${file}.ids.txt`] : [file];
}

/**
 * Writes the embeddings to `file` in the format its extension names (.jsonl, .npy, .safetensors);
 * an existing file is overwritten only with `force`, and never inside a run's checkpoints/.
 *
 * @example
 * writeEmbeddings('captions.npy', ids, embeddings); // also captions.npy.ids.txt
 */
export function writeEmbeddings(file: string, ids: readonly string[], embeddings: Tensor, options: { force?: boolean } = {}): void {
  for (const f of embeddingFiles(file)) checkOutputFile(f, options.force ?? false);
  const [n, d] = embeddings.shape as [number, number];
  const ext = extname(file).toLowerCase();
  if (ext === '.jsonl') writeFileAtomic(file, Buffer.from(jsonlText(ids, embeddings)));
  else if (ext === '.npy') {
    writeFileAtomic(file, npyBytes(new Float32Array(embeddings.toFlatArray()), n, d));
    writeFileAtomic(`${file}.ids.txt`, Buffer.from(ids.map((id) => `${id}\n`).join('')));
  } else if (ext === '.safetensors') {
    writeFileAtomic(file, serializeSafetensors(new Map([['embeddings', embeddings]]), { ids: JSON.stringify(ids) }));
  } else throw new TypeError(`${file}: the output must end in .jsonl, .npy or .safetensors`);
}
