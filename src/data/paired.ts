// The in-memory form that every paired (image–text) data-set parser returns, and what the parsers
// share: reading a file, placing a JSON syntax error at a line and column, keeping image paths
// inside their folder, recognising image files by their first bytes, bounding captions, and the
// fail-or-skip policy for bad records.
import { closeSync, readSync, realpathSync, statSync } from 'node:fs';
import { isAbsolute, relative, sep } from 'node:path';
import { jsonErrorOffset, lineColumn } from '../engine/json_text.js';
import { decodeUtf8, InvalidUtf8Error, NotRegularFileError, openRegularFile, readRegularFile } from './safe_read.js';

/** One item: an image, its captions, or any subset (a JSONL manifest may leave a modality out). */
export interface PairedItem {
  id: string;
  /** Absolute path of the image file. */
  image?: string;
  /** Captions, trimmed and never empty; `[]` for an item without text. */
  captions: string[];
  /** Whatever else the source holds for the item (COCO's width and height, Karpathy's split, a JSONL vector). */
  extra?: Record<string, unknown>;
  /**
   * The folder that relative file paths in `extra` are read from (a JSONL manifest's folder, as for
   * `image`); set on items with a plug-in modality's field (ParseOptions.modalityFields), e.g. `audio`.
   */
  folder?: string;
}

/** A parsed data set: its items in file order, the file they came from, and what was left out. */
export interface PairedDataset {
  items: PairedItem[];
  /** Absolute path of the annotation file or manifest. */
  source: string;
  /** Records left out, by reason (see {@link BadRecordReason}); `{}` when nothing was. */
  skipped: Record<string, number>;
}

/** Why a file or record was refused. */
export type BadRecordReason =
  | 'missing-file'
  | 'malformed-json'
  | 'invalid-utf8'
  | 'missing-field'
  | 'invalid-field'
  | 'duplicate-id'
  | 'unknown-image-id'
  | 'empty-caption'
  | 'missing-image'
  | 'not-an-image'
  | 'image-too-large'
  | 'outside-image-folder'
  /** A plug-in modality's file (an audio clip) outside the manifest's folder. */
  | 'outside-media-folder'
  | 'no-captions'
  | 'no-modality'
  /** A plug-in modality's file that it cannot use (a clip that is not a WAV, truncated, NaN samples; see BadItemError). */
  | 'bad-media';

/** Where in a file a problem is: a line (and column), and/or a record such as `annotations[17] (id 42)`. */
export interface DatasetErrorLocation {
  line?: number;
  column?: number;
  record?: string;
}

/**
 * A data-set file or record that cannot be used. The message starts with the file, then the
 * position (`file:line:column:` or `file: record:`), then the problem.
 */
export class DatasetError extends Error {
  // string, not the literal: subclasses (AudioDecodeError) name themselves.
  override readonly name: string = 'DatasetError';
  readonly line: number | undefined;
  readonly column: number | undefined;
  readonly record: string | undefined;
  constructor(
    readonly file: string,
    readonly reason: BadRecordReason,
    problem: string,
    at: DatasetErrorLocation = {},
    options?: { cause?: unknown },
  ) {
    let where = file;
    if (at.line !== undefined) where += `:${at.line}` + (at.column !== undefined ? `:${at.column}` : '');
    if (at.record !== undefined) where += at.line !== undefined ? ` (${at.record})` : `: ${at.record}`;
    super(`${where}: ${problem}`, options);
    this.line = at.line;
    this.column = at.column;
    this.record = at.record;
  }
}

/** What to do with a bad record: throw a {@link DatasetError} ('fail'), or leave it out and count it ('skip'). */
export type OnBadRecord = 'fail' | 'skip';

/** Options every paired data-set parser takes. */
export interface ParseOptions {
  /** 'fail' (default) throws on the first bad record; 'skip' leaves bad records out and counts them in `skipped`. */
  onBadRecord?: OnBadRecord;
  /** Called with each record that 'skip' leaves out, e.g. to log the first few. */
  onSkip?: (error: DatasetError) => void;
  /**
   * Check that every image file exists and starts like a PNG, JPEG, WebP or GIF (default true;
   * one open and a 12-byte read per image). False trusts the annotation file.
   */
  checkImages?: boolean;
  /**
   * Read image paths that lead outside the image folder (`..`, an absolute path, or a symbolic
   * link whose target is elsewhere); default false: such a record is refused as
   * 'outside-image-folder' (the config's `data.allowOutsideImages`).
   */
  allowOutsideImages?: boolean;
  /**
   * Fields of a JSONL line that are modalities of their own besides "image", "text" and "vector":
   * a registered plug-in modality's name (docs/modalities.md). A line with one of them is kept
   * even if it has none of the three.
   */
  modalityFields?: readonly string[];
  /**
   * Plug-in fields that name files (a path or a list of paths relative to the manifest's folder),
   * by field: what their files are, so that loading checks them as it checks images (inside the
   * folder unless `allowOutsideImages`; with `checkImages`, present and starting like their format).
   */
  mediaFields?: Readonly<Record<string, MediaFileKind>>;
}

/** What a plug-in modality's media files are: checked at load time by {@link mediaFileProblem}. */
export interface MediaFileKind {
  /** What one file is called in messages, e.g. 'audio clip'. */
  noun: string;
  /** The formats read, for messages, e.g. 'WAV'. */
  formats: string;
  /** True when the first 12 bytes of a file start like one of the formats. */
  sniff(head: Uint8Array): boolean;
}

/** The fail-or-skip policy of one parse, and its counts of skipped records by reason. */
export class BadRecords {
  readonly skipped: Record<string, number> = {};
  readonly #policy: OnBadRecord;
  readonly #onSkip: ((error: DatasetError) => void) | undefined;

  constructor(options: ParseOptions) {
    const policy = options.onBadRecord ?? 'fail';
    if (policy !== 'fail' && policy !== 'skip') throw new TypeError(`onBadRecord must be 'fail' or 'skip', got ${JSON.stringify(policy)}`);
    this.#policy = policy;
    this.#onSkip = options.onSkip;
  }

  /** Throws `error` under 'fail'; under 'skip' counts it and returns, and the caller drops the record. */
  report(error: DatasetError): void {
    if (this.#policy === 'fail') throw error;
    this.count(error.reason);
    this.#onSkip?.(error);
  }

  /** Counts a record left out under either policy (e.g. an image whose captions were all refused). */
  count(reason: BadRecordReason): void {
    this.skipped[reason] = (this.skipped[reason] ?? 0) + 1;
  }
}

/**
 * The text of a UTF-8 file (without a byte-order mark). A missing file, a FIFO or device, and
 * bytes that are not UTF-8 are DatasetErrors naming the file (and the line) and what it was for.
 */
export function readTextFile(file: string, what: string): string {
  let bytes: Buffer;
  try {
    bytes = readRegularFile(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const problem =
      err instanceof NotRegularFileError
        ? `is ${err.kind}, not a file (the ${what})`
        : code === 'ENOENT'
          ? `no such file (the ${what})`
          : `cannot read the ${what} (${code ?? (err as Error).message})`;
    throw new DatasetError(file, 'missing-file', problem, {}, { cause: err });
  }
  try {
    return decodeUtf8(bytes);
  } catch (err) {
    if (!(err instanceof InvalidUtf8Error)) throw err;
    const problem = `not valid UTF-8 (at byte ${err.column} of the line); save the ${what} as UTF-8`;
    throw new DatasetError(file, 'invalid-utf8', problem, { line: err.line, column: err.column }, { cause: err });
  }
}

/**
 * Captions longer than this many characters are cut to it (after trimming), so that one huge
 * caption costs no more to tokenize and fit than an ordinary one. The tokenizer keeps at most
 * text.maxLength tokens (≤ 1024) and a token covers at most 100 characters of a word; ordinary
 * text averages well under 16 characters per token, so the cut changes no ordinary caption.
 */
export const MAX_CAPTION_CHARS = 16384;

/** A caption as the parsers keep it: trimmed, and cut to {@link MAX_CAPTION_CHARS} (never inside a surrogate pair). */
export function captionText(raw: string): string {
  const text = raw.trim();
  if (text.length <= MAX_CAPTION_CHARS) return text;
  const end = MAX_CAPTION_CHARS - (isHighSurrogate(text.charCodeAt(MAX_CAPTION_CHARS - 1)) ? 1 : 0);
  return text.slice(0, end).trimEnd();
}

const isHighSurrogate = (code: number): boolean => code >= 0xd800 && code <= 0xdbff;

/**
 * The folder a data set's images are read from, and the rule that keeps every image path inside
 * it: a path whose words leave it (`../x.png`, an absolute path elsewhere) or whose real path,
 * symbolic links followed, lies elsewhere is refused as 'outside-image-folder', unless
 * `allowOutsideImages`. Nothing outside is opened before that check.
 *
 * @example
 * const folder = new ImageFolder('/data/coco/val2014', {});
 * folder.problem('/data/coco/val2014/../../etc/shadow.png', true); // { reason: 'outside-image-folder', problem: '...' }
 */
export class ImageFolder {
  readonly #realRoot: string;
  readonly #allowOutside: boolean;

  /** `root` must exist (see {@link requireDirectory}). */
  constructor(
    readonly root: string,
    options: ParseOptions,
  ) {
    this.#realRoot = realpathSync.native(root);
    this.#allowOutside = options.allowOutsideImages ?? false;
  }

  /**
   * Why the image at absolute `path` cannot be used (outside the folder, or with `checkImages`,
   * missing or not an image; see {@link imageFileProblem}), or null.
   */
  problem(path: string, checkImages: boolean): { reason: BadRecordReason; problem: string } | null {
    return this.#outside(path, 'image', 'outside-image-folder', 'the image folder') ?? (checkImages ? imageFileProblem(path) : null);
  }

  /** As {@link problem}, for a plug-in modality's file of `kind` (see {@link mediaFileProblem}). */
  mediaProblem(path: string, kind: MediaFileKind, checkFiles: boolean): { reason: BadRecordReason; problem: string } | null {
    return (
      this.#outside(path, kind.noun, 'outside-media-folder', "the manifest's folder") ?? (checkFiles ? mediaFileProblem(path, kind) : null)
    );
  }

  #outside(path: string, noun: string, reason: BadRecordReason, folder: string): { reason: BadRecordReason; problem: string } | null {
    if (this.#allowOutside) return null;
    const outside = `outside ${folder} ${this.root}; set data.allowOutsideImages (allowOutsideImages) to read it anyway`;
    if (leavesFolder(relative(this.root, path))) return { reason, problem: `${noun} ${path} is ${outside}` };
    let real: string | undefined;
    try {
      real = realpathSync.native(path);
    } catch {
      // A missing file is reported by the file check, and reads nothing.
    }
    if (real !== undefined && leavesFolder(relative(this.#realRoot, real)))
      return { reason, problem: `${noun} ${path} leads through a symbolic link to ${real}, ${outside}` };
    return null;
  }
}

/** True when a path relative to a folder (node:path's relative) leaves the folder. */
export const leavesFolder = (relativePath: string): boolean =>
  relativePath === '..' || relativePath.startsWith(`..${sep}`) || isAbsolute(relativePath);

/** Throws a DatasetError unless `dir` is a directory. */
export function requireDirectory(dir: string, what: string): void {
  let isDirectory = false;
  try {
    isDirectory = statSync(dir).isDirectory();
  } catch {
    throw new DatasetError(dir, 'missing-file', `no such directory (the ${what})`);
  }
  if (!isDirectory) throw new DatasetError(dir, 'missing-file', `not a directory (the ${what})`);
}

/**
 * Parses JSON text; a syntax error becomes a DatasetError at its line and column. `firstLine`
 * numbers the text's first line (a JSONL record's line in its file).
 */
export function parseJson(text: string, file: string, firstLine = 1): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    if (!(err instanceof SyntaxError)) throw err;
    const { line, column } = lineColumn(text, jsonErrorOffset(text, err));
    throw new DatasetError(
      file,
      'malformed-json',
      `malformed JSON: ${err.message.replace(/\s+/g, ' ')}`,
      { line: line + firstLine - 1, column },
      { cause: err },
    );
  }
}

/** Image formats recognised by their magic bytes. */
export type ImageFormat = 'png' | 'jpeg' | 'webp' | 'gif';

const ascii = (bytes: Uint8Array, from: number, to: number): string => String.fromCharCode(...bytes.subarray(from, to));

/**
 * The image format the first bytes (12 suffice) announce, or null: PNG's 8-byte signature,
 * JPEG's SOI marker and the next marker's FF, GIF87a/GIF89a, or a RIFF container of type WEBP.
 *
 * @example
 * sniffImageFormat(new Uint8Array([0xff, 0xd8, 0xff, 0xe0])); // 'jpeg'
 */
export function sniffImageFormat(head: Uint8Array): ImageFormat | null {
  const png = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
  if (head.length >= 8 && png.every((b, i) => head[i] === b)) return 'png';
  if (head.length >= 3 && head[0] === 0xff && head[1] === 0xd8 && head[2] === 0xff) return 'jpeg';
  if (head.length >= 6 && (ascii(head, 0, 6) === 'GIF87a' || ascii(head, 0, 6) === 'GIF89a')) return 'gif';
  if (head.length >= 12 && ascii(head, 0, 4) === 'RIFF' && ascii(head, 8, 12) === 'WEBP') return 'webp';
  return null;
}

/**
 * Why an image file cannot be used, or null when it is a regular file that starts like an image.
 * A FIFO, socket or device is refused without a blocking open (see {@link openRegularFile}), and
 * the message never quotes the file's bytes (the path may name a file the user may not show).
 */
export function imageFileProblem(path: string): { reason: 'missing-image' | 'not-an-image'; problem: string } | null {
  const read = readFileHead(path, 'image');
  if ('problem' in read) return { reason: read.missing ? 'missing-image' : 'not-an-image', problem: read.problem };
  const { head } = read;
  if (sniffImageFormat(head) !== null) return null;
  return {
    reason: 'not-an-image',
    problem: `${path} is not a PNG, JPEG, WebP or GIF image (${head.length === 0 ? 'it is empty' : 'its first bytes match none of their signatures'})`,
  };
}

/** Why a plug-in modality's file cannot be used ('bad-media': missing, not a regular file, not of its formats), or null. */
export function mediaFileProblem(path: string, kind: MediaFileKind): { reason: 'bad-media'; problem: string } | null {
  const read = readFileHead(path, kind.noun);
  if ('problem' in read) return { reason: 'bad-media', problem: read.problem };
  const { head } = read;
  if (kind.sniff(head)) return null;
  const why = head.length === 0 ? 'it is empty' : 'its first bytes match none of their signatures';
  return { reason: 'bad-media', problem: `${kind.noun} ${path} is not a ${kind.formats} file (${why})` };
}

/**
 * The first 12 bytes of the file at `path`, or why it cannot be read (`missing`: absent or
 * unreadable, rather than not a regular file). A FIFO, socket or device is refused without a
 * blocking open (see {@link openRegularFile}); messages never quote the file's bytes (the path may
 * name a file the user may not show).
 */
function readFileHead(path: string, noun: string): { head: Uint8Array } | { missing: boolean; problem: string } {
  const head = new Uint8Array(12);
  let fd: number | undefined;
  try {
    fd = openRegularFile(path);
    return { head: head.subarray(0, readSync(fd, head, 0, head.length, 0)) };
  } catch (err) {
    if (err instanceof NotRegularFileError)
      return { missing: false, problem: `${noun} ${path} is ${err.kind}, not ${noun === 'image' ? 'an image' : `a ${noun}`} file` };
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return { missing: true, problem: `${noun} file ${path} does not exist` };
    return { missing: true, problem: `${noun} file ${path} cannot be read (${code ?? (err as Error).message})` };
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** True for a plain JSON object (not an array or null). */
export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
