// Decoding one image file into the pixels a model sees: sharp (libvips) reads PNG, JPEG, WebP,
// GIF, TIFF, AVIF or SVG, puts JPEG photos upright (EXIF orientation), flattens any alpha onto
// a background (white: the icon data sets are dark glyphs on a transparent background), resizes
// to a square and returns raw uint8 pixels. This module runs inside the decode workers
// (image_worker.ts), so it must not import the engine: loading libtorch into every worker would
// cost seconds and hundreds of megabytes each.
import { closeSync, readSync, statSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import sharp, { type OutputInfo } from 'sharp';
import { DatasetError, sniffImageFormat, type DatasetErrorLocation } from './paired.js';
import { nonRegularKind, openRegularFile } from './safe_read.js';

/**
 * Seconds libvips may spend on one image before it is refused: a decompression bomb that slips
 * under the pixel limit must not stall training. Ordinary images take milliseconds.
 */
export const DECODE_TIMEOUT_SECONDS = 30;

/**
 * The most pixels (width × height) a file may have for an output of `size` pixels a side: at
 * least 4096² (16.8 MP, beyond any camera photo a small model is trained on), and at most
 * sharp's own default of 16383²; in between, (64 · size)². A 64-px model needs no 200-megapixel
 * input, and an interlaced 8000² 16-bit PNG would take over half a gigabyte to decode.
 */
export function maxInputPixels(size: number): number {
  return Math.min(16383 * 16383, Math.max(4096 * 4096, (64 * size) ** 2));
}

/**
 * How a square image is made from a file of any shape.
 *
 * - 'cover' (default): scale so the shorter side fits, then crop the centre. Keeps the aspect
 *   ratio, so shapes are not distorted; loses the borders of non-square images. Icons are square,
 *   and photos lose little that a random resized crop would not cut anyway.
 * - 'fill': stretch to the square, keeping everything but distorting non-square images.
 */
export type ImageFit = 'cover' | 'fill';

export interface ImageDecodeOptions {
  /** Side length of the square output, in pixels (1–8192). */
  size: number;
  /** 3: RGB (default; greyscale files are expanded); 1: greyscale (luminance). */
  channels?: 1 | 3;
  /** See {@link ImageFit}; default 'cover'. */
  fit?: ImageFit;
  /** Colour transparent pixels are flattened onto, as '#rrggbb'; default '#ffffff' (white). */
  background?: string;
}

/** One decoded image: uint8 pixels in row-major [height, width, channels] (HWC) order. */
export interface DecodedImage {
  data: Uint8Array;
  height: number;
  width: number;
  channels: number;
}

/** What is wrong with an image file that could not be decoded. */
export type ImageProblem = 'missing-image' | 'not-an-image' | 'corrupt-image' | 'image-too-large';

/**
 * An image file that cannot be decoded: missing (`missing-image`), not an image at all
 * (`not-an-image`), starting like an image but unreadable (`corrupt-image`, e.g. truncated), or
 * more pixels than {@link maxInputPixels} allows (`image-too-large`). `kind` says which; `reason`
 * is the nearest {@link BadRecordReason} ('not-an-image' for corrupt files), so the parsers'
 * fail-or-skip code handles it like their own errors.
 */
export class ImageDecodeError extends DatasetError {
  constructor(
    file: string,
    readonly kind: ImageProblem,
    /** What is wrong, without the file (the message starts with the file, then this). */
    readonly problem: string,
    at: DatasetErrorLocation = {},
    options?: { cause?: unknown },
  ) {
    super(file, kind === 'corrupt-image' ? 'not-an-image' : kind, problem, at, options);
  }
}

/** Options with defaults filled in, after checking them; throws a TypeError naming the bad field. */
export function resolveDecodeOptions(options: ImageDecodeOptions): Required<ImageDecodeOptions> {
  const { size, channels = 3, fit = 'cover', background = '#ffffff' } = options;
  if (!Number.isInteger(size) || size < 1 || size > 8192)
    throw new TypeError(`image decode: size must be an integer in 1..8192, got ${size}`);
  if (channels !== 1 && channels !== 3) throw new TypeError(`image decode: channels must be 1 or 3, got ${String(channels)}`);
  if (fit !== 'cover' && fit !== 'fill') throw new TypeError(`image decode: fit must be 'cover' or 'fill', got ${JSON.stringify(fit)}`);
  if (!/^#[0-9a-fA-F]{6}$/.test(background))
    throw new TypeError(`image decode: background must be '#rrggbb', got ${JSON.stringify(background)}`);
  return { size, channels, fit, background };
}

/**
 * Decodes, flattens and resizes one image file in this thread (libvips works on libuv's thread
 * pool, so the event loop is not blocked). Use an {@link ImageDecodePool} to decode many.
 * Throws an {@link ImageDecodeError} naming the file and what is wrong with it. A FIFO or device
 * is refused before it is opened; a file over {@link maxInputPixels} or one that takes more than
 * {@link DECODE_TIMEOUT_SECONDS} is refused too.
 *
 * @example
 * const { data, height, width, channels } = await decodeImage('icons/cat.png', { size: 64 });
 * // data.length === 64 * 64 * 3; data[0..2] is the top-left pixel's R, G, B
 */
export async function decodeImage(path: string, options: ImageDecodeOptions): Promise<DecodedImage> {
  const { size, channels, fit, background } = resolveDecodeOptions(options);
  // libvips would open a FIFO with a blocking open and wait for a writer forever.
  const kind = await stat(path).then(nonRegularKind, () => null); // a stat failure is described below
  if (kind !== null) throw new ImageDecodeError(path, 'not-an-image', `is ${kind}, not an image file`);
  const limitInputPixels = maxInputPixels(size);
  let pipeline = sharp(path, { autoOrient: true, limitInputPixels }) // failOn 'warning' (the default) refuses truncated files
    .timeout({ seconds: DECODE_TIMEOUT_SECONDS })
    .flatten({ background })
    .resize(size, size, { fit, position: 'centre' });
  pipeline = channels === 1 ? pipeline.toColourspace('b-w') : pipeline.toColourspace('srgb');
  let result: { data: Buffer; info: OutputInfo };
  try {
    result = await pipeline.raw().toBuffer({ resolveWithObject: true });
  } catch (err) {
    if (/exceeds pixel limit/i.test(String((err as Error)?.message))) throw await tooLarge(path, limitInputPixels, size, err);
    throw describeDecodeFailure(path, err);
  }
  const { data, info } = result;
  if (info.width !== size || info.height !== size || info.channels !== channels) {
    // libvips keeps extra bands it cannot map to RGB (e.g. CMYK with a spot channel): refuse rather than guess.
    throw new ImageDecodeError(
      path,
      'corrupt-image',
      `decoded to ${info.width}×${info.height}×${info.channels}, expected ${size}×${size}×${channels}; the file's colour layout is not supported`,
    );
  }
  return { data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), height: size, width: size, channels };
}

/** The error for a file over the pixel limit, with its dimensions (read from its header only). */
async function tooLarge(path: string, limit: number, size: number, cause: unknown): Promise<ImageDecodeError> {
  let dimensions = '';
  try {
    const { width, height } = await sharp(path, { limitInputPixels: false }).metadata();
    if (width !== undefined && height !== undefined)
      dimensions = ` (${width}×${height} = ${((width * height) / 1e6).toFixed(1)} megapixels)`;
  } catch {
    // The limit alone still says what is wrong.
  }
  const problem = `is too large${dimensions}: a model of ${size}-pixel images reads at most ${(limit / 1e6).toFixed(1)} megapixels; shrink the file`;
  return new ImageDecodeError(path, 'image-too-large', problem, {}, { cause });
}

/**
 * Turns a failed decode into an ImageDecodeError that says which of missing, not an image, or
 * corrupt the file is. Only called on failure, so good files cost no extra reads.
 */
export function describeDecodeFailure(path: string, err: unknown): ImageDecodeError {
  const libvips = String((err as Error)?.message ?? err)
    .split('\n')[0]!
    .trim();
  let isFile: boolean;
  let bytes: number;
  try {
    const stats = statSync(path);
    isFile = stats.isFile();
    bytes = stats.size;
  } catch (statErr) {
    const code = (statErr as NodeJS.ErrnoException).code;
    const problem = code === 'ENOENT' || code === 'ENOTDIR' ? 'no such image file' : `cannot read the image file (${code ?? libvips})`;
    return new ImageDecodeError(path, 'missing-image', problem, {}, { cause: err });
  }
  if (!isFile) return new ImageDecodeError(path, 'not-an-image', 'is a directory or device, not an image file', {}, { cause: err });
  if (bytes === 0) return new ImageDecodeError(path, 'not-an-image', 'is empty (0 bytes), not an image', {}, { cause: err });
  // Never quote the file's bytes: the path may name a file whose content the user may not show.
  if (/unsupported image format/i.test(libvips))
    return new ImageDecodeError(path, 'not-an-image', 'is not an image in any format sharp reads', {}, { cause: err });
  if (/^timeout/i.test(libvips)) {
    const problem = `took more than ${DECODE_TIMEOUT_SECONDS} s to decode and was given up (libvips: ${libvips})`;
    return new ImageDecodeError(path, 'corrupt-image', problem, {}, { cause: err });
  }
  const head = readHead(path, 12);
  const format = sniffImageFormat(head);
  const looksLike = format === null ? 'the file' : `the file starts like a ${format.toUpperCase()} but`;
  return new ImageDecodeError(
    path,
    'corrupt-image',
    `cannot be decoded: ${looksLike} is corrupt or truncated (libvips: ${libvips})`,
    {},
    { cause: err },
  );
}

function readHead(path: string, length: number): Uint8Array {
  const head = new Uint8Array(length);
  let fd: number | undefined;
  try {
    fd = openRegularFile(path);
    return head.subarray(0, readSync(fd, head, 0, length, 0));
  } catch {
    return head.subarray(0, 0);
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/**
 * Copies HWC pixels into `out` at `offset` as CHW planes (the layout of an [N, C, H, W] tensor),
 * so the copy a worker makes anyway also does the transpose, off the main thread.
 */
export function hwcToChw(image: DecodedImage, out: Uint8Array, offset = 0): void {
  const { data, height, width, channels } = image;
  const plane = height * width;
  if (offset + plane * channels > out.length) {
    throw new RangeError(`hwcToChw: ${channels}×${height}×${width} pixels do not fit at offset ${offset} of ${out.length} bytes`);
  }
  if (channels === 1) {
    out.set(data, offset);
    return;
  }
  for (let c = 0; c < channels; c++) {
    const base = offset + c * plane;
    for (let p = 0, q = c; p < plane; p++, q += channels) out[base + p] = data[q]!;
  }
}
