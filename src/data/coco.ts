// COCO captions (Chen et al. 2015, "Microsoft COCO Captions", arXiv:1504.00325): a JSON file
// `captions_<split><year>.json` with `images` [{id, file_name, width, height, ...}] and
// `annotations` [{id, image_id, caption}], about five captions per image, beside a folder of images.
import { join, resolve } from 'node:path';
import {
  BadRecords,
  captionText,
  DatasetError,
  ImageFolder,
  isObject,
  parseJson,
  readTextFile,
  requireDirectory,
  type BadRecordReason,
  type PairedDataset,
  type PairedItem,
  type ParseOptions,
} from './paired.js';

/**
 * Loads a COCO captions file, one item per image with all its captions (trimmed), in the order
 * of `images`; `image` is `imageDir/file_name`, and `extra` keeps the image record's other fields
 * plus `annotationIds`.
 *
 * Bad records, which 'fail' (default) throws on and 'skip' leaves out and counts: an image
 * without `id` or `file_name`, a repeated image id, an image file that is missing, not an image,
 * or outside `imageDir` (see {@link ImageFolder}; its captions go with it), an annotation without `image_id` or `caption`, one whose `image_id`
 * names no image, and an empty caption. An image left with no caption is left out under either
 * policy and counted as `no-captions` (the test-set `image_info` files have no captions at all).
 * A missing or malformed file, or one without `images` and `annotations` arrays, always throws.
 *
 * @example
 * const { items, skipped } = loadCocoCaptions('annotations/captions_val2014.json', 'val2014', { onBadRecord: 'skip' });
 * items[0]; // { id: '391895', image: '/data/coco/val2014/COCO_val2014_000000391895.jpg', captions: [5 strings], extra: {...} }
 */
export function loadCocoCaptions(captionsFile: string, imageDir: string, options: ParseOptions = {}): PairedDataset {
  const file = resolve(captionsFile);
  const dir = resolve(imageDir);
  const bad = new BadRecords(options);
  const checkImages = options.checkImages ?? true;
  const json = parseJson(readTextFile(file, 'COCO captions file'), file);
  requireDirectory(dir, 'COCO image folder');
  const folder = new ImageFolder(dir, options);
  for (const field of ['images', 'annotations']) {
    if (!isObject(json) || !Array.isArray(json[field])) {
      throw new DatasetError(file, 'missing-field', `the top-level object has no "${field}" array; is this a COCO captions file?`);
    }
  }
  const { images, annotations } = json as { images: unknown[]; annotations: unknown[] };

  const byId = new Map<string, PairedItem & { extra: Record<string, unknown> & { annotationIds: unknown[] } }>();
  const leftOut = new Set<string>(); // ids of images refused, whose annotations go with them
  images.forEach((image, index) => {
    const record = `images[${index}]` + (isObject(image) && image.id !== undefined ? ` (id ${JSON.stringify(image.id)})` : '');
    const refuse = (reason: BadRecordReason, problem: string): void => bad.report(new DatasetError(file, reason, problem, { record }));
    if (!isObject(image)) return refuse('invalid-field', 'is not an object');
    const { id, file_name: fileName, ...rest } = image;
    if (id === undefined || id === null) return refuse('missing-field', 'has no "id" field');
    if (typeof id !== 'number' && typeof id !== 'string')
      return refuse('invalid-field', `"id" is ${typeof id}, expected a number or string`);
    const key = String(id);
    if (fileName === undefined || fileName === null) {
      leftOut.add(key);
      return refuse('missing-field', 'has no "file_name" field');
    }
    if (typeof fileName !== 'string' || fileName === '') {
      leftOut.add(key);
      return refuse('invalid-field', '"file_name" must be a non-empty string');
    }
    if (byId.has(key)) return refuse('duplicate-id', `repeats image id ${JSON.stringify(id)}`);
    const path = join(dir, fileName);
    const problem = folder.problem(path, checkImages);
    if (problem) {
      leftOut.add(key);
      return refuse(problem.reason, problem.problem);
    }
    byId.set(key, { id: key, image: path, captions: [], extra: { ...rest, annotationIds: [] } });
  });

  annotations.forEach((annotation, index) => {
    const record =
      `annotations[${index}]` + (isObject(annotation) && annotation.id !== undefined ? ` (id ${JSON.stringify(annotation.id)})` : '');
    const refuse = (reason: BadRecordReason, problem: string): void => bad.report(new DatasetError(file, reason, problem, { record }));
    if (!isObject(annotation)) return refuse('invalid-field', 'is not an object');
    const { image_id: imageId, caption } = annotation;
    if (imageId === undefined || imageId === null) return refuse('missing-field', 'has no "image_id" field');
    if (caption === undefined || caption === null) return refuse('missing-field', 'has no "caption" field');
    if (typeof caption !== 'string') return refuse('invalid-field', `"caption" is ${typeof caption}, expected a string`);
    const key = String(imageId);
    if (leftOut.has(key)) return;
    const item = byId.get(key);
    if (!item) return refuse('unknown-image-id', `image_id ${JSON.stringify(imageId)} matches no entry of "images"`);
    const text = captionText(caption);
    if (text === '') return refuse('empty-caption', 'the caption is empty or only whitespace');
    item.captions.push(text);
    item.extra.annotationIds.push(annotation.id ?? null);
  });

  const items: PairedItem[] = [];
  for (const item of byId.values()) {
    if (item.captions.length > 0) items.push(item);
    else bad.count('no-captions');
  }
  return { items, source: file, skipped: bad.skipped };
}
