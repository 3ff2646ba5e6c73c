// Reading files named by data the user may not control: a FIFO, socket or device named like a data
// file must not block the process forever (a blocking open or read of a FIFO without a writer
// never returns), and a file that is not UTF-8 must be refused rather than turned into U+FFFD.
// No engine import: the decode workers use this module.
import { closeSync, constants, fstatSync, openSync, readFileSync, statSync, type Stats } from 'node:fs';

/** A path that names a FIFO, socket, device or directory where a regular file was expected. */
export class NotRegularFileError extends Error {
  override readonly name = 'NotRegularFileError';
  constructor(
    readonly file: string,
    /** What it is instead, in words: 'a directory', 'a FIFO (named pipe)', ... */
    readonly kind: string,
  ) {
    super(`${file} is ${kind}, not a regular file`);
  }
}

/** What a stat result is when it is not a regular file, in words; null for a regular file. */
export function nonRegularKind(stats: Stats): string | null {
  if (stats.isFile()) return null;
  if (stats.isDirectory()) return 'a directory';
  if (stats.isFIFO()) return 'a FIFO (named pipe)';
  if (stats.isSocket()) return 'a socket';
  if (stats.isCharacterDevice()) return 'a character device';
  if (stats.isBlockDevice()) return 'a block device';
  return 'not a regular file';
}

/**
 * Opens a regular file for reading, following symbolic links. Anything else is refused with a
 * {@link NotRegularFileError} before a blocking open: the path is stat'ed first, then opened
 * non-blocking and fstat'ed again, so a FIFO swapped in between is refused too. Errors of the
 * file system (ENOENT, EACCES, ...) are thrown as they are. The caller closes the descriptor.
 */
export function openRegularFile(path: string): number {
  const kind = nonRegularKind(statSync(path));
  if (kind !== null) throw new NotRegularFileError(path, kind);
  const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  const kindNow = nonRegularKind(fstatSync(fd));
  if (kindNow !== null) {
    closeSync(fd);
    throw new NotRegularFileError(path, kindNow);
  }
  return fd;
}

/** The bytes of a regular file; see {@link openRegularFile} for what is refused. */
export function readRegularFile(path: string): Buffer {
  const fd = openRegularFile(path);
  try {
    return readFileSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Bytes that are not UTF-8, at a 1-based line and column (the column counts bytes). */
export class InvalidUtf8Error extends Error {
  override readonly name = 'InvalidUtf8Error';
  constructor(
    readonly line: number,
    readonly column: number,
  ) {
    super(`line ${line}, byte ${column} is not valid UTF-8; save the file as UTF-8`);
  }
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Decodes UTF-8 strictly: an invalid byte is an {@link InvalidUtf8Error} at its line and column,
 * never a silent U+FFFD. A leading byte-order mark is dropped.
 *
 * @example
 * decodeUtf8(Buffer.from('a\nb\xff', 'latin1')); // throws InvalidUtf8Error: line 2, byte 2 is not valid UTF-8
 */
export function decodeUtf8(bytes: Uint8Array): string {
  let text: string;
  try {
    text = strictUtf8.decode(bytes);
  } catch {
    throw invalidUtf8At(bytes);
  }
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

/** The line and column of the first byte that breaks UTF-8 (RFC 3629: no overlong forms, surrogates or code points past U+10FFFF). */
function invalidUtf8At(bytes: Uint8Array): InvalidUtf8Error {
  const offset = firstInvalidUtf8Byte(bytes);
  const lineStart = offset === 0 ? 0 : bytes.lastIndexOf(0x0a, offset - 1) + 1; // a negative fromIndex would count from the end
  let line = 1;
  for (let i = bytes.indexOf(0x0a); i !== -1 && i < lineStart; i = bytes.indexOf(0x0a, i + 1)) line++;
  return new InvalidUtf8Error(line, offset - lineStart + 1);
}

/** Offset of the first byte of the first invalid (or cut-short) sequence; bytes.length if there is none. */
export function firstInvalidUtf8Byte(bytes: Uint8Array): number {
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i]!;
    if (b < 0x80) {
      i++;
      continue;
    }
    const continuation = b >= 0xc2 && b <= 0xdf ? 1 : b >= 0xe0 && b <= 0xef ? 2 : b >= 0xf0 && b <= 0xf4 ? 3 : 0;
    if (continuation === 0 || i + continuation >= bytes.length) return i;
    // The second byte's range excludes overlong forms (E0, F0), surrogates (ED) and code points past U+10FFFF (F4).
    const [low, high] =
      b === 0xe0 ? [0xa0, 0xbf] : b === 0xed ? [0x80, 0x9f] : b === 0xf0 ? [0x90, 0xbf] : b === 0xf4 ? [0x80, 0x8f] : [0x80, 0xbf];
    if (bytes[i + 1]! < low || bytes[i + 1]! > high) return i;
    for (let k = 2; k <= continuation; k++) if ((bytes[i + k]! & 0xc0) !== 0x80) return i;
    i += continuation + 1;
  }
  return i;
}
