// The Karpathy splits (Karpathy & Fei-Fei 2015, "Deep Visual-Semantic Alignments", arXiv:1412.2306):
// `dataset_coco.json`, `dataset_flickr8k.json`, `dataset_flickr30k.json`, each {images: [{filepath?,
// filename, split, sentences: [{raw, tokens}], imgid, cocoid?}]}, the train/val/test partition that
// image–text retrieval papers report on (COCO 5k test, Flickr30k 1k test).
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

/** A split to load. 'train' includes 'restval'. */
export type KarpathySplit = 'train' | 'val' | 'test';

const SPLITS_IN_FILES = new Set(['train', 'restval', 'val', 'test']);

/**
 * Loads one split of a Karpathy split file: one item per image of the split, with its sentences'
 * `raw` text (trimmed) as captions. 'train' includes the 'restval' images (the rest of COCO
 * val2014 after the 5k val and 5k test images), as is customary since VSE++ (Faghri et al. 2018):
 * 113,287 COCO training images. The image is `imageRoot/filepath/filename` (COCO: `filepath` is
 * train2014 or val2014) or `imageRoot/filename` (Flickr). The id is `cocoid` when the record has
 * one (it matches the COCO captions files), else `filename`. `extra` holds the record's own
 * `split` ('restval' stays visible there), `imgid`, and `tokens` of each kept sentence.
 *
 * Bad records, which 'fail' (default) throws on and 'skip' leaves out and counts: an image without
 * `split` or with an unknown one, and, within the split, one without `filename` or `sentences`, a
 * repeated id, a missing or non-image file, a path outside `imageRoot` (see {@link ImageFolder}), a sentence without `raw` and an empty sentence (the
 * sentence alone is left out). Only images of the chosen split are checked beyond `split`. An
 * image left with no sentence is left out under either policy and counted as `no-captions`.
 *
 * @example
 * const test = loadKarpathySplit('dataset_coco.json', '/data/coco', 'test'); // 5000 COCO images, about five captions each
 */
export function loadKarpathySplit(splitFile: string, imageRoot: string, split: KarpathySplit, options: ParseOptions = {}): PairedDataset {
  if (split !== 'train' && split !== 'val' && split !== 'test') {
    throw new TypeError(`loadKarpathySplit: split must be 'train', 'val' or 'test', got ${JSON.stringify(split)}`);
  }
  const file = resolve(splitFile);
  const root = resolve(imageRoot);
  const bad = new BadRecords(options);
  const checkImages = options.checkImages ?? true;
  const json = parseJson(readTextFile(file, 'Karpathy split file'), file);
  requireDirectory(root, 'image root');
  const folder = new ImageFolder(root, options);
  if (!isObject(json) || !Array.isArray(json.images)) {
    throw new DatasetError(file, 'missing-field', 'the top-level object has no "images" array; is this a Karpathy split file?');
  }

  const items: PairedItem[] = [];
  const seen = new Set<string>();
  json.images.forEach((image, index) => {
    const name = isObject(image) && typeof image.filename === 'string' ? ` (${image.filename})` : '';
    const refuse = (reason: BadRecordReason, problem: string, record = `images[${index}]${name}`): void =>
      bad.report(new DatasetError(file, reason, problem, { record }));
    if (!isObject(image)) return refuse('invalid-field', 'is not an object');
    if (image.split === undefined || image.split === null) return refuse('missing-field', 'has no "split" field');
    if (typeof image.split !== 'string' || !SPLITS_IN_FILES.has(image.split)) {
      return refuse('invalid-field', `"split" is ${JSON.stringify(image.split)}, expected train, restval, val or test`);
    }
    if ((image.split === 'restval' ? 'train' : image.split) !== split) return;

    const { filename, filepath, sentences } = image;
    if (filename === undefined || filename === null) return refuse('missing-field', 'has no "filename" field');
    if (typeof filename !== 'string' || filename === '') return refuse('invalid-field', '"filename" must be a non-empty string');
    if (filepath !== undefined && typeof filepath !== 'string') return refuse('invalid-field', '"filepath" must be a string');
    if (sentences === undefined || sentences === null) return refuse('missing-field', 'has no "sentences" field');
    if (!Array.isArray(sentences)) return refuse('invalid-field', '"sentences" must be an array');
    const id = image.cocoid !== undefined && image.cocoid !== null ? String(image.cocoid) : filename;
    if (seen.has(id)) return refuse('duplicate-id', `repeats image id ${JSON.stringify(id)}`);
    seen.add(id);
    const path = join(root, filepath ?? '', filename);
    const problem = folder.problem(path, checkImages);
    if (problem) return refuse(problem.reason, problem.problem);

    const captions: string[] = [];
    const tokens: unknown[] = [];
    sentences.forEach((sentence, s) => {
      const record = `images[${index}]${name} sentences[${s}]`;
      if (!isObject(sentence)) return refuse('invalid-field', 'is not an object', record);
      if (sentence.raw === undefined || sentence.raw === null) return refuse('missing-field', 'has no "raw" field', record);
      if (typeof sentence.raw !== 'string') return refuse('invalid-field', `"raw" is ${typeof sentence.raw}, expected a string`, record);
      const text = captionText(sentence.raw);
      if (text === '') return refuse('empty-caption', 'the sentence is empty or only whitespace', record);
      captions.push(text);
      tokens.push(sentence.tokens ?? null);
    });
    if (captions.length === 0) return bad.count('no-captions');
    items.push({ id, image: path, captions, extra: { split: image.split, imgid: image.imgid ?? null, tokens } });
  });
  return { items, source: file, skipped: bad.skipped };
}
