// A JSON Lines manifest (https://jsonlines.org): one object per line, holding any subset of the
// modalities, e.g.
//   {"id": "a1", "image": "images/a1.png", "text": ["a cat", "a sleeping cat"], "vector": [0.1, 0.2]}
//   {"id": "a2", "text": "text only"}
import { dirname, resolve } from 'node:path';
import {
  BadRecords,
  captionText,
  DatasetError,
  ImageFolder,
  isObject,
  parseJson,
  readTextFile,
  type BadRecordReason,
  type PairedDataset,
  type PairedItem,
  type ParseOptions,
} from './paired.js';

/**
 * Loads a JSONL manifest. Each non-blank line is an object with an `id` (string or number) and at
 * least one of `image` (a path relative to the manifest's folder, or absolute; either way inside
 * that folder unless `allowOutsideImages`, see {@link ImageFolder}), `text` (a string or
 * an array of strings, becoming `captions`) and `vector` (an array of finite numbers, the same
 * length on every line, kept as `extra.vector`). Other fields go to `extra` as they are; a plug-in
 * modality's field that names files (`audio`; ParseOptions.mediaFields) is checked as images are.
 *
 * Bad records, which 'fail' (default) throws on, naming the line, and 'skip' leaves out and
 * counts: a line that is not JSON or not an object, one without `id` or with a repeated one, an
 * ill-typed modality, a missing or non-image file (or plug-in media file: `bad-media`), a file
 * outside the folder, and a line with none of the modalities. An
 * empty text is left out alone (`empty-caption`); if that leaves the line with no modality, the
 * line is left out too and also counted as `no-modality`.
 *
 * @example
 * const { items } = loadJsonlManifest('pairs/train.jsonl');
 * items[0]; // { id: 'a1', image: '/abs/pairs/images/a1.png', captions: ['a cat', 'a sleeping cat'], extra: { vector: [0.1, 0.2] } }
 */
export function loadJsonlManifest(manifestFile: string, options: ParseOptions = {}): PairedDataset {
  const file = resolve(manifestFile);
  const base = dirname(file);
  const bad = new BadRecords(options);
  const checkImages = options.checkImages ?? true;
  const lines = readTextFile(file, 'JSONL manifest').split('\n');
  const folder = new ImageFolder(base, options);

  const items: PairedItem[] = [];
  const seen = new Set<string>();
  let vectorLength: number | undefined;
  lines.forEach((raw, index) => {
    const line = index + 1;
    const text = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (text.trim() === '') return;
    let record: unknown;
    try {
      record = parseJson(text, file, line);
    } catch (err) {
      if (err instanceof DatasetError) return bad.report(err);
      throw err;
    }
    const id = isObject(record) && (typeof record.id === 'string' || typeof record.id === 'number') ? String(record.id) : undefined;
    const refuse = (reason: BadRecordReason, problem: string): void =>
      bad.report(new DatasetError(file, reason, problem, id === undefined ? { line } : { line, record: `id ${JSON.stringify(id)}` }));
    if (!isObject(record))
      return refuse('invalid-field', `the line holds ${Array.isArray(record) ? 'an array' : typeof record}, expected an object`);
    const { id: rawId, image, text: captionsIn, vector, ...rest } = record;
    if (rawId === undefined || rawId === null) return refuse('missing-field', 'has no "id" field');
    if (id === undefined) return refuse('invalid-field', `"id" is ${typeof rawId}, expected a string or number`);
    if (seen.has(id)) return refuse('duplicate-id', `repeats id ${JSON.stringify(id)}`);
    const has = (v: unknown): boolean => v !== undefined && v !== null;
    const plugInFields = (options.modalityFields ?? []).filter((f) => has(rest[f]));
    if (!has(image) && !has(captionsIn) && !has(vector) && plugInFields.length === 0) {
      const names = [...new Set(['image', 'text', 'vector', ...(options.modalityFields ?? [])])].map((f) => JSON.stringify(f));
      return refuse('no-modality', `has none of ${names.slice(0, -1).join(', ')} and ${names.at(-1)}`);
    }

    const item: PairedItem = { id, captions: [] };
    const extra: Record<string, unknown> = { ...rest };
    if (has(image)) {
      if (typeof image !== 'string' || image === '') return refuse('invalid-field', '"image" must be a non-empty string (a file path)');
      const path = resolve(base, image);
      const problem = folder.problem(path, checkImages);
      if (problem) return refuse(problem.reason, problem.problem);
      item.image = path;
    }
    if (has(vector)) {
      if (!Array.isArray(vector) || vector.length === 0 || !vector.every((v) => typeof v === 'number' && Number.isFinite(v))) {
        return refuse('invalid-field', '"vector" must be a non-empty array of finite numbers');
      }
      if (vectorLength !== undefined && vector.length !== vectorLength) {
        return refuse('invalid-field', `"vector" has ${vector.length} numbers but earlier lines have ${vectorLength}`);
      }
      vectorLength = vector.length;
      extra.vector = vector;
    }
    for (const field of plugInFields) {
      const kind = options.mediaFields?.[field];
      if (kind === undefined) continue;
      const value = rest[field];
      const paths = Array.isArray(value) ? value : [value];
      const where = (k: number): string => (Array.isArray(value) ? `"${field}"[${k}]` : `"${field}"`);
      if (paths.length === 0) return refuse('invalid-field', `"${field}" is an empty list; give a file path or leave the field out`);
      for (const [k, path] of paths.entries()) {
        if (typeof path !== 'string' || path === '') return refuse('invalid-field', `${where(k)} must be a non-empty string (a file path)`);
        const problem = folder.mediaProblem(resolve(base, path), kind, checkImages);
        if (problem) return refuse(problem.reason, problem.problem);
      }
    }
    let emptyCaptions = 0;
    if (has(captionsIn)) {
      const list = Array.isArray(captionsIn) ? captionsIn : [captionsIn];
      const position = (k: number): string => (Array.isArray(captionsIn) ? `"text"[${k}]` : '"text"');
      const wrong = list.findIndex((c) => typeof c !== 'string');
      if (wrong !== -1) return refuse('invalid-field', `${position(wrong)} is ${typeof list[wrong]}, expected a string`);
      for (const [k, caption] of (list as string[]).entries()) {
        const trimmed = captionText(caption);
        if (trimmed !== '') item.captions.push(trimmed);
        else {
          emptyCaptions++;
          refuse('empty-caption', `${position(k)} is empty or only whitespace`);
        }
      }
    }
    if (
      emptyCaptions > 0 &&
      item.image === undefined &&
      item.captions.length === 0 &&
      extra.vector === undefined &&
      plugInFields.length === 0
    ) {
      return refuse('no-modality', 'has no modality left once its empty text is left out');
    }
    if (Object.keys(extra).length > 0) item.extra = extra;
    if (plugInFields.length > 0) item.folder = base;
    seen.add(id);
    items.push(item);
  });
  return { items, source: file, skipped: bad.skipped };
}
