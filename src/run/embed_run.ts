// Embedding new data with a trained model: what `byol-align embed` does. Inputs per modality:
//   image   a folder (every .png/.jpg/.jpeg/.webp/.gif under it; id = path relative to it) or one image file
//   text    a .txt file (one text per non-blank line; id = line number) or .jsonl ({"id", "text"})
//   vector  a .jsonl file ({"id", "vector"})
// The embedding is l2-normalised, in the space retrieval is best in (the run's recorded space, or --space).
import { existsSync, readdirSync, realpathSync, statSync } from 'node:fs';
import { extname, join, relative } from 'node:path';
import { cat, noGrad, tidy, F, type Tensor } from '../engine/index.js';
import { captionText, imageFileProblem, leavesFolder } from '../data/paired.js';
import { decodeUtf8, InvalidUtf8Error, NotRegularFileError, readRegularFile } from '../data/safe_read.js';
import type { LoadedModel } from './model_setup.js';

const IMAGE_EXTENSIONS = new Set(['.png', '.jpg', '.jpeg', '.webp', '.gif']);

/** Raw inputs with their ids, ready for the modality's collate. */
export interface EmbedInputs {
  ids: string[];
  items: unknown[];
}

/** An --input that cannot be embedded as the chosen modality. */
export class EmbedInputError extends Error {
  override readonly name = 'EmbedInputError';
}

/** Options of {@link readEmbedInputs}. */
export interface ReadEmbedInputsOptions {
  /** Embed images of a folder that are symbolic links to files outside it (default false: refused). */
  allowOutsideImages?: boolean;
}

/** The image files under `dir` (symbolic links to folders are not followed; links to files outside `dir` are refused unless allowed). */
function imageFiles(dir: string, allowOutside: boolean): string[] {
  const realDir = realpathSync.native(dir);
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const entry of readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const path = join(d, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (IMAGE_EXTENSIONS.has(extname(entry.name).toLowerCase())) {
        if (!allowOutside && entry.isSymbolicLink()) {
          let real: string | undefined;
          try {
            real = realpathSync.native(path);
          } catch {
            // A dangling link is reported as a missing image by the caller's check.
          }
          if (real !== undefined && leavesFolder(relative(realDir, real)))
            throw new EmbedInputError(
              `${path} is a symbolic link to ${real}, outside the input folder ${dir}; pass allowOutsideImages to embed it anyway`,
            );
        }
        out.push(path);
      }
    }
  };
  walk(dir);
  return out;
}

/** The text of an input file: a regular file (a FIFO would block forever) in UTF-8. */
function readInputText(file: string): string {
  try {
    return decodeUtf8(readRegularFile(file));
  } catch (err) {
    if (err instanceof InvalidUtf8Error)
      throw new EmbedInputError(`${file}:${err.line}:${err.column}: not valid UTF-8; save the input as UTF-8`);
    if (err instanceof NotRegularFileError) throw new EmbedInputError(`${file}: ${err.kind}, not a file`);
    throw new EmbedInputError(`${file}: cannot read it (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
}

function parseJsonlField(file: string, field: 'text' | 'vector'): EmbedInputs {
  const ids: string[] = [];
  const items: unknown[] = [];
  readInputText(file)
    .split('\n')
    .forEach((line, index) => {
      if (line.trim() === '') return;
      let record: unknown;
      try {
        record = JSON.parse(line);
      } catch (err) {
        throw new EmbedInputError(`${file}:${index + 1}: not JSON (${(err as Error).message})`);
      }
      const r = record as Record<string, unknown>;
      const value = r?.[field];
      const ok =
        field === 'text'
          ? typeof value === 'string' && value.trim() !== ''
          : Array.isArray(value) && value.every((v) => Number.isFinite(v));
      if (!ok)
        throw new EmbedInputError(
          `${file}:${index + 1}: expected a "${field}" field holding ${field === 'text' ? 'a non-empty string' : 'an array of numbers'}`,
        );
      ids.push(r.id === undefined ? String(index + 1) : String(r.id));
      items.push(field === 'text' ? captionText(value as string) : value);
    });
  return { ids, items };
}

/**
 * Reads `input` as items of `modality`; an input of another kind is an EmbedInputError naming it.
 * Texts are cut like the data sets' captions ({@link captionText}); a FIFO or device is refused
 * without being opened for a blocking read.
 */
export function readEmbedInputs(modality: string, input: string, options: ReadEmbedInputsOptions = {}): EmbedInputs {
  if (!existsSync(input)) throw new EmbedInputError(`${input}: no such file or folder`);
  const isDir = statSync(input).isDirectory();
  if (modality === 'image') {
    const files = isDir ? imageFiles(input, options.allowOutsideImages ?? false) : [input];
    if (files.length === 0) throw new EmbedInputError(`${input}: no image files (${[...IMAGE_EXTENSIONS].join(', ')}) in this folder`);
    for (const f of files) {
      const problem = imageFileProblem(f);
      if (problem) throw new EmbedInputError(`${problem.problem}; --modality image needs PNG, JPEG, WebP or GIF files`);
    }
    return { ids: files.map((f) => (isDir ? relative(input, f) : f)), items: files };
  }
  if (isDir)
    throw new EmbedInputError(
      `${input}: a folder; --modality ${modality} reads a ${modality === 'text' ? '.txt or .jsonl' : '.jsonl'} file`,
    );
  if (imageFileProblem(input) === null)
    throw new EmbedInputError(`${input}: an image file, not ${modality} input; use --modality image for images`);
  const ext = extname(input).toLowerCase();
  if (modality === 'text') {
    if (ext === '.jsonl') return parseJsonlField(input, 'text');
    if (ext !== '.txt') throw new EmbedInputError(`${input}: --modality text reads a .txt file (one text per line) or a .jsonl file`);
    const ids: string[] = [];
    const items: string[] = [];
    readInputText(input)
      .split('\n')
      .forEach((line, index) => {
        if (line.trim() === '') return;
        ids.push(String(index + 1));
        items.push(captionText(line));
      });
    if (items.length === 0) throw new EmbedInputError(`${input}: no text (every line is blank)`);
    return { ids, items };
  }
  if (modality === 'vector') {
    if (ext !== '.jsonl') throw new EmbedInputError(`${input}: --modality vector reads a .jsonl file of {"id", "vector"} lines`);
    return parseJsonlField(input, 'vector');
  }
  throw new EmbedInputError(`unknown modality '${modality}'`);
}

export interface EmbedOptions {
  /** 'projection' or 'encoder' (default: the space the run retrieves best in, `loaded.retrievalSpace`). */
  space?: 'projection' | 'encoder';
  /** Inputs per forward (default 256). */
  batchSize?: number;
}

/**
 * The l2-normalised embeddings [N, d] of the inputs, in batches, in the space retrieval uses.
 *
 * @example
 * const loaded = loadModel('runs/icons');
 * const { ids, embeddings } = await embedInputs(loaded, 'text', readEmbedInputs('text', 'queries.txt'));
 */
export async function embedInputs(
  loaded: LoadedModel,
  modalityName: string,
  inputs: EmbedInputs,
  options: EmbedOptions = {},
): Promise<{ ids: string[]; embeddings: Tensor; space: 'projection' | 'encoder' }> {
  // The pairing space compares predictions with target projections: no single embedding per item.
  const space = options.space ?? (loaded.retrievalSpace === 'pairing' ? 'projection' : loaded.retrievalSpace);
  const batchSize = options.batchSize ?? 256;
  const modality = loaded.modalities.find((m) => m.name === modalityName);
  if (!modality)
    throw new EmbedInputError(`the model has no '${modalityName}' modality; it has ${loaded.modalities.map((m) => m.name).join(', ')}`);
  loaded.model.eval();
  const parts: Tensor[] = [];
  for (let i = 0; i < inputs.items.length; i += batchSize) {
    const batch = await modality.collate(inputs.items.slice(i, i + batchSize));
    parts.push(noGrad(() => tidy(() => F.normalize(loaded.model.embed(modalityName, modality.evalInput(batch), space)))));
    batch.dispose();
  }
  const embeddings = cat(parts);
  for (const p of parts) p.dispose();
  return { ids: inputs.ids, embeddings, space };
}
