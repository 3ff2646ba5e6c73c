// How `embed --input` is read for each modality (its factory's readEmbedInputs):
//   image   a folder (every .png/.jpg/.jpeg/.webp/.gif under it; id = path relative to it) or one image file
//   text    a .txt file (one text per non-blank line; id = line number) or .jsonl ({"id", "text"})
//   vector  a .jsonl file ({"id", "vector"})
//   NAME    a registered modality without a reader of its own: a .jsonl file ({"id", "NAME"})
import { readdirSync, realpathSync, statSync } from 'node:fs';
import { extname, join, relative } from 'node:path';
import { captionText, imageFileProblem, leavesFolder } from '../data/paired.js';
import { decodeUtf8, InvalidUtf8Error, NotRegularFileError, readRegularFile } from '../data/safe_read.js';
import type { EmbedInputs, ReadEmbedInputsOptions } from './modality.js';

const IMAGE_EXTENSIONS = new Set(['.png', '.jpg', '.jpeg', '.webp', '.gif']);

/** An --input that cannot be embedded as the chosen modality. */
export class EmbedInputError extends Error {
  override readonly name = 'EmbedInputError';
}

/**
 * The files under `dir` whose extension (lower-cased, with its dot) is in `extensions`, in sorted
 * order (symbolic links to folders are not followed; links to files outside `dir` are refused
 * unless allowed). Image and audio folders are both read with it.
 */
export function mediaFiles(dir: string, extensions: ReadonlySet<string>, allowOutside: boolean): string[] {
  const realDir = realpathSync.native(dir);
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const entry of readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const path = join(d, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (extensions.has(extname(entry.name).toLowerCase())) {
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

/** Refuses a folder or an image file as the input of a modality that reads files of `reads`. */
function checkFileInput(input: string, modality: string, reads: string): void {
  if (statSync(input).isDirectory()) throw new EmbedInputError(`${input}: a folder; --modality ${modality} reads a ${reads} file`);
  if (imageFileProblem(input) === null)
    throw new EmbedInputError(`${input}: an image file, not ${modality} input; use --modality image for images`);
}

/** What a JSONL input's field must hold: a check, its description for errors, and the raw item it becomes. */
export interface JsonlField {
  /** The record's field, e.g. "text". */
  name: string;
  /** e.g. 'an array of numbers', for "expected a "NAME" field holding ...". */
  holding: string;
  accepts(value: unknown): boolean;
  /** The raw item for collate (default: the value as it is). */
  toItem?(value: unknown): unknown;
}

/**
 * The ids and raw items of a .jsonl file of `{"id", FIELD}` lines (id defaults to the line
 * number); a line that is not JSON or lacks an acceptable field is an EmbedInputError naming the
 * file and line.
 *
 * @example
 * readJsonlEmbedInputs('tones.jsonl', { name: 'tone', holding: 'an array of numbers', accepts: Array.isArray });
 */
export function readJsonlEmbedInputs(file: string, field: JsonlField): EmbedInputs {
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
      const value = r?.[field.name];
      if (!field.accepts(value))
        throw new EmbedInputError(`${file}:${index + 1}: expected a "${field.name}" field holding ${field.holding}`);
      ids.push(r.id === undefined ? String(index + 1) : String(r.id));
      items.push(field.toItem ? field.toItem(value) : value);
    });
  return { ids, items };
}

/** Image files: a folder's (id = path relative to it) or one file (id = its path). */
export function readImageEmbedInputs(input: string, options: ReadEmbedInputsOptions): EmbedInputs {
  const isDir = statSync(input).isDirectory();
  const files = isDir ? mediaFiles(input, IMAGE_EXTENSIONS, options.allowOutsideImages ?? false) : [input];
  if (files.length === 0) throw new EmbedInputError(`${input}: no image files (${[...IMAGE_EXTENSIONS].join(', ')}) in this folder`);
  for (const f of files) {
    const problem = imageFileProblem(f);
    if (problem) throw new EmbedInputError(`${problem.problem}; --modality image needs PNG, JPEG, WebP or GIF files`);
  }
  return { ids: files.map((f) => (isDir ? relative(input, f) : f)), items: files };
}

const TEXT_FIELD: JsonlField = {
  name: 'text',
  holding: 'a non-empty string',
  accepts: (v) => typeof v === 'string' && v.trim() !== '',
  toItem: (v) => captionText(v as string),
};

/** Texts, cut like the data sets' captions ({@link captionText}): a .txt file (id = line number) or .jsonl. */
export function readTextEmbedInputs(input: string): EmbedInputs {
  checkFileInput(input, 'text', '.txt or .jsonl');
  const ext = extname(input).toLowerCase();
  if (ext === '.jsonl') return readJsonlEmbedInputs(input, TEXT_FIELD);
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

/** Vectors: a .jsonl file of {"id", "vector"} lines. */
export function readVectorEmbedInputs(input: string): EmbedInputs {
  checkFileInput(input, 'vector', '.jsonl');
  if (extname(input).toLowerCase() !== '.jsonl')
    throw new EmbedInputError(`${input}: --modality vector reads a .jsonl file of {"id", "vector"} lines`);
  return readJsonlEmbedInputs(input, {
    name: 'vector',
    holding: 'an array of numbers',
    accepts: (v) => Array.isArray(v) && v.every((x) => Number.isFinite(x)),
  });
}

/** A registered modality without a reader of its own: a .jsonl file of {"id", NAME} lines, NAME any JSON value but null. */
export function readFieldEmbedInputs(input: string, modality: string): EmbedInputs {
  checkFileInput(input, modality, '.jsonl');
  if (extname(input).toLowerCase() !== '.jsonl')
    throw new EmbedInputError(`${input}: --modality ${modality} reads a .jsonl file of {"id", "${modality}"} lines`);
  return readJsonlEmbedInputs(input, { name: modality, holding: 'a value', accepts: (v) => v !== undefined && v !== null });
}
