// The paired data-set parsers (COCO captions, Karpathy splits, JSONL manifests): valid tiny sets
// written to a temporary folder with real 1×1 PNG and JPEG files, and every kind of bad input,
// which must throw a DatasetError naming the file and the position, or, with onBadRecord 'skip',
// be left out and counted.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pngBytes } from './png.js';
import { loadCocoCaptions } from '../src/data/coco.js';
import { loadKarpathySplit } from '../src/data/karpathy.js';
import { loadJsonlManifest } from '../src/data/jsonl.js';
import { DatasetError, sniffImageFormat, type BadRecordReason } from '../src/data/paired.js';
import { scratchDir } from './scratch_dir.js';

const root = scratchDir('byol-align-datasets-');
let folders = 0;
/** A fresh folder under the temporary root. */
function folder(): string {
  const dir = join(root, String(folders++));
  mkdirSync(dir);
  return dir;
}

/**
 * A 1×1 grey baseline JPEG: a flat quantisation table, one-code Huffman tables (DC category 0,
 * AC end-of-block, both coded '0'), and one scan byte 0b00111111 (the two codes, padded with 1s).
 * libjpeg decodes it to the value 128.
 */
function jpegBytes(): Buffer {
  const huffmanTable = (tableClass: number): number[] => [0xff, 0xc4, 0x00, 0x14, tableClass, 1, ...Array<number>(15).fill(0), 0x00];
  return Buffer.from([
    ...[0xff, 0xd8], // SOI
    ...[0xff, 0xdb, 0x00, 0x43, 0x00, ...Array<number>(64).fill(1)], // DQT
    ...[0xff, 0xc0, 0x00, 0x0b, 0x08, 0x00, 0x01, 0x00, 0x01, 0x01, 0x01, 0x11, 0x00], // SOF0: 8-bit, 1×1, one component
    ...huffmanTable(0x00),
    ...huffmanTable(0x10),
    ...[0xff, 0xda, 0x00, 0x08, 0x01, 0x01, 0x00, 0x00, 0x3f, 0x00], // SOS
    0x3f,
    ...[0xff, 0xd9], // EOI
  ]);
}

function write(dir: string, name: string, content: string | Buffer | object): string {
  const path = join(dir, name);
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, typeof content === 'string' || Buffer.isBuffer(content) ? content : JSON.stringify(content, null, 1));
  return path;
}

/** Asserts that fn throws a DatasetError for `reason` whose message contains every fragment. */
function throwsDatasetError(fn: () => unknown, reason: BadRecordReason, ...fragments: string[]): DatasetError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof DatasetError, `expected a DatasetError, got ${String(caught)}`);
  assert.equal(caught.reason, reason, caught.message);
  for (const fragment of fragments) assert.ok(caught.message.includes(fragment), `"${caught.message}" does not mention "${fragment}"`);
  return caught;
}

// ---- shared helpers ----

test('image formats are recognised by their magic bytes and nothing else is', () => {
  assert.equal(sniffImageFormat(pngBytes()), 'png');
  assert.equal(sniffImageFormat(jpegBytes()), 'jpeg');
  assert.equal(sniffImageFormat(Buffer.from('GIF89a\x01\x00\x01\x00', 'latin1')), 'gif');
  assert.equal(sniffImageFormat(Buffer.from('GIF87a\x01\x00\x01\x00', 'latin1')), 'gif');
  assert.equal(sniffImageFormat(Buffer.from('RIFF\x24\x00\x00\x00WEBPVP8 ', 'latin1')), 'webp');
  assert.equal(sniffImageFormat(Buffer.from('RIFF\x24\x00\x00\x00WAVEfmt ', 'latin1')), null); // a RIFF audio file
  assert.equal(sniffImageFormat(pngBytes().subarray(0, 7)), null); // truncated signature
  assert.equal(sniffImageFormat(Buffer.from('<html></html>')), null);
  assert.equal(sniffImageFormat(Buffer.alloc(0)), null);
});

// ---- COCO captions ----

interface CocoFixture {
  dir: string;
  images: string;
  captions: string;
}

function cocoFixture(content: object | string): CocoFixture {
  const dir = folder();
  const images = join(dir, 'val2014');
  write(images, 'a.png', pngBytes());
  write(images, 'b.jpg', jpegBytes());
  write(images, 'notes.jpg', 'not an image, just text');
  return { dir, images, captions: write(dir, 'captions_val2014.json', content) };
}

const validCoco = {
  info: {},
  images: [
    { id: 7, file_name: 'a.png', width: 1, height: 1 },
    { id: 9, file_name: 'b.jpg', width: 1, height: 1 },
  ],
  annotations: [
    { id: 100, image_id: 7, caption: 'A red square.\n' },
    { id: 101, image_id: 9, caption: '  A grey dot. ' },
    { id: 102, image_id: 7, caption: 'One red pixel.' },
  ],
};

test('COCO: one item per image with all its captions, trimmed, and absolute image paths', () => {
  const { images, captions } = cocoFixture(validCoco);
  const data = loadCocoCaptions(captions, images);
  assert.equal(data.source, captions);
  assert.deepEqual(data.skipped, {});
  assert.deepEqual(data.items, [
    {
      id: '7',
      image: join(images, 'a.png'),
      captions: ['A red square.', 'One red pixel.'],
      extra: { width: 1, height: 1, annotationIds: [100, 102] },
    },
    { id: '9', image: join(images, 'b.jpg'), captions: ['A grey dot.'], extra: { width: 1, height: 1, annotationIds: [101] } },
  ]);
});

test('COCO: a missing captions file or image folder is named', () => {
  const { dir, images } = cocoFixture(validCoco);
  const missing = join(dir, 'captions_train2014.json');
  throwsDatasetError(() => loadCocoCaptions(missing, images), 'missing-file', missing, 'no such file');
  const { captions } = cocoFixture(validCoco);
  throwsDatasetError(() => loadCocoCaptions(captions, join(dir, 'train2014')), 'missing-file', join(dir, 'train2014'), 'no such directory');
});

test('COCO: malformed JSON is reported at its line and column', () => {
  // V8 gives an offset for this one ("Expected ',' or '}' after property value in JSON at position 36").
  const missingComma = '{\n "images": [],\n "annotations": [] "x": 1\n}';
  const a = cocoFixture(missingComma);
  const errA = throwsDatasetError(() => loadCocoCaptions(a.captions, a.images), 'malformed-json', `${a.captions}:3:20:`);
  assert.deepEqual([errA.line, errA.column], [3, 20]);
  // ...and none for this one ("Unexpected token '}', ... is not valid JSON"): the re-reader places it.
  const valueMissing = '{\n "images": [],\n "annotations": [\n  {"id": 1, "caption": }\n ]\n}';
  const b = cocoFixture(valueMissing);
  const errB = throwsDatasetError(() => loadCocoCaptions(b.captions, b.images), 'malformed-json', `${b.captions}:4:24:`);
  assert.deepEqual([errB.line, errB.column], [4, 24]);
  const c = cocoFixture('{"images": [');
  throwsDatasetError(() => loadCocoCaptions(c.captions, c.images), 'malformed-json', `${c.captions}:1:13:`);
});

test('COCO: a file without images and annotations arrays is refused', () => {
  const { images, captions } = cocoFixture({ images: [] });
  throwsDatasetError(() => loadCocoCaptions(captions, images), 'missing-field', captions, '"annotations"');
});

test('COCO: an annotation for an unknown image names the image id and the annotation index', () => {
  const bad = { ...validCoco, annotations: [...validCoco.annotations, { id: 103, image_id: 404, caption: 'lost' }] };
  const { images, captions } = cocoFixture(bad);
  const err = throwsDatasetError(
    () => loadCocoCaptions(captions, images),
    'unknown-image-id',
    captions,
    'annotations[3] (id 103)',
    'image_id 404',
  );
  assert.equal(err.record, 'annotations[3] (id 103)');
});

test('COCO: an empty or whitespace-only caption is refused with its annotation', () => {
  for (const caption of ['', ' \n\t ']) {
    const bad = { ...validCoco, annotations: [validCoco.annotations[0], { id: 104, image_id: 9, caption }] };
    const { images, captions } = cocoFixture(bad);
    throwsDatasetError(() => loadCocoCaptions(captions, images), 'empty-caption', captions, 'annotations[1] (id 104)', 'empty');
  }
});

test('COCO: a missing required field is named with its record', () => {
  const noCaption = cocoFixture({ ...validCoco, annotations: [{ id: 5, image_id: 7 }] });
  throwsDatasetError(() => loadCocoCaptions(noCaption.captions, noCaption.images), 'missing-field', 'annotations[0] (id 5)', '"caption"');
  const noImageId = cocoFixture({ ...validCoco, annotations: [{ caption: 'x' }] });
  throwsDatasetError(() => loadCocoCaptions(noImageId.captions, noImageId.images), 'missing-field', 'annotations[0]:', '"image_id"');
  const noFileName = cocoFixture({ ...validCoco, images: [validCoco.images[0], { id: 9 }] });
  throwsDatasetError(() => loadCocoCaptions(noFileName.captions, noFileName.images), 'missing-field', 'images[1] (id 9)', '"file_name"');
  const noId = cocoFixture({ ...validCoco, images: [{ file_name: 'a.png' }] });
  throwsDatasetError(() => loadCocoCaptions(noId.captions, noId.images), 'missing-field', 'images[0]:', '"id"');
  const wrongType = cocoFixture({ ...validCoco, annotations: [{ image_id: 7, caption: 42 }] });
  throwsDatasetError(
    () => loadCocoCaptions(wrongType.captions, wrongType.images),
    'invalid-field',
    'annotations[0]',
    '"caption" is number',
  );
});

test('COCO: a missing image file or a file that is not an image is named', () => {
  const missing = cocoFixture({ ...validCoco, images: [...validCoco.images, { id: 11, file_name: 'gone.png' }] });
  throwsDatasetError(
    () => loadCocoCaptions(missing.captions, missing.images),
    'missing-image',
    'images[2] (id 11)',
    join(missing.images, 'gone.png'),
  );
  const text = cocoFixture({ ...validCoco, images: [...validCoco.images, { id: 12, file_name: 'notes.jpg' }] });
  throwsDatasetError(
    () => loadCocoCaptions(text.captions, text.images),
    'not-an-image',
    'images[2] (id 12)',
    join(text.images, 'notes.jpg'),
    'not a PNG, JPEG, WebP or GIF image',
  );
  const folderAsImage = cocoFixture({ ...validCoco, images: [{ id: 13, file_name: '.' }] });
  throwsDatasetError(() => loadCocoCaptions(folderAsImage.captions, folderAsImage.images), 'not-an-image', 'is a directory');
  // checkImages: false trusts the annotation file.
  const trusted = loadCocoCaptions(missing.captions, missing.images, { checkImages: false });
  assert.deepEqual(
    trusted.items.map((item) => item.id),
    ['7', '9'],
  ); // image 11 has no caption, so it is left out as no-captions
  assert.deepEqual(trusted.skipped, { 'no-captions': 1 });
});

const messyCoco = {
  images: [
    { id: 7, file_name: 'a.png' },
    { id: 9, file_name: 'b.jpg' },
    { id: 11, file_name: 'gone.png' }, // missing-image; its annotation 205 goes with it
    { id: 12, file_name: 'notes.jpg' }, // not-an-image
    { id: 13 }, // missing-field
    { id: 7, file_name: 'b.jpg' }, // duplicate-id
    { id: 14, file_name: 'a.png' }, // no caption at all: no-captions
  ],
  annotations: [
    { id: 200, image_id: 7, caption: 'kept one' },
    { id: 201, image_id: 404, caption: 'unknown image' }, // unknown-image-id
    { id: 202, image_id: 9, caption: '   ' }, // empty-caption
    { id: 203, image_id: 9 }, // missing-field
    { id: 204, image_id: 9, caption: 'kept two' },
    { id: 205, image_id: 11, caption: 'caption of a missing image' },
    { id: 206, image_id: 7, caption: '' }, // empty-caption
  ],
};

test('COCO: skip mode leaves bad records out and counts them by reason', () => {
  const { images, captions } = cocoFixture(messyCoco);
  const logged: string[] = [];
  const data = loadCocoCaptions(captions, images, { onBadRecord: 'skip', onSkip: (err) => logged.push(err.record ?? '') });
  assert.deepEqual(
    data.items.map((item) => [item.id, item.captions]),
    [
      ['7', ['kept one']],
      ['9', ['kept two']],
    ],
  );
  assert.deepEqual(data.skipped, {
    'missing-image': 1,
    'not-an-image': 1,
    'missing-field': 2,
    'duplicate-id': 1,
    'unknown-image-id': 1,
    'empty-caption': 2,
    'no-captions': 1,
  });
  assert.deepEqual(logged, [
    'images[2] (id 11)',
    'images[3] (id 12)',
    'images[4] (id 13)',
    'images[5] (id 7)',
    'annotations[1] (id 201)',
    'annotations[2] (id 202)',
    'annotations[3] (id 203)',
    'annotations[6] (id 206)',
  ]);
  // The same file under the default policy stops at the first bad record.
  throwsDatasetError(() => loadCocoCaptions(captions, images), 'missing-image', 'images[2] (id 11)');
  assert.throws(() => loadCocoCaptions(captions, images, { onBadRecord: 'ignore' as 'skip' }), /onBadRecord must be 'fail' or 'skip'/);
});

// ---- Karpathy splits ----

function karpathyFixture(images: object[] | string): { root: string; file: string } {
  const dir = folder();
  write(dir, 'train2014/t.png', pngBytes());
  write(dir, 'val2014/v.jpg', jpegBytes());
  write(dir, 'val2014/r.png', pngBytes());
  write(dir, 'flat.jpg', jpegBytes());
  write(dir, 'val2014/notes.jpg', 'text');
  return { root: dir, file: write(dir, 'dataset_coco.json', typeof images === 'string' ? images : { images, dataset: 'coco' }) };
}

const sentence = (raw: string): object => ({ raw, tokens: raw.toLowerCase().split(' '), imgid: 0, sentid: 0 });
const validKarpathy = [
  {
    filepath: 'train2014',
    filename: 't.png',
    split: 'train',
    imgid: 0,
    cocoid: 1,
    sentences: [sentence('A train image.'), sentence('Red.')],
  },
  { filepath: 'val2014', filename: 'v.jpg', split: 'test', imgid: 1, cocoid: 2, sentences: [sentence('A test image.')] },
  { filepath: 'val2014', filename: 'r.png', split: 'restval', imgid: 2, cocoid: 3, sentences: [sentence(' Restval. ')] },
  { filename: 'flat.jpg', split: 'val', imgid: 3, sentences: [sentence('Flickr style.')] },
  { filepath: 'val2014', filename: 'gone.jpg', split: 'val', imgid: 4, cocoid: 5, sentences: [sentence('Missing file.')] },
];

test('Karpathy: train includes restval, and paths join root, filepath and filename', () => {
  const { root, file } = karpathyFixture(validKarpathy.slice(0, 4));
  const train = loadKarpathySplit(file, root, 'train');
  assert.deepEqual(train.items, [
    {
      id: '1',
      image: join(root, 'train2014', 't.png'),
      captions: ['A train image.', 'Red.'],
      extra: { split: 'train', imgid: 0, tokens: [['a', 'train', 'image.'], ['red.']] },
    },
    {
      id: '3',
      image: join(root, 'val2014', 'r.png'),
      captions: ['Restval.'],
      extra: { split: 'restval', imgid: 2, tokens: [['', 'restval.', '']] },
    },
  ]);
  assert.deepEqual(
    loadKarpathySplit(file, root, 'test').items.map((item) => [item.id, item.image, item.captions]),
    [['2', join(root, 'val2014', 'v.jpg'), ['A test image.']]],
  );
  // Without cocoid (Flickr30k) the id is the file name, and there is no filepath.
  assert.deepEqual(
    loadKarpathySplit(file, root, 'val').items.map((item) => [item.id, item.image]),
    [['flat.jpg', join(root, 'flat.jpg')]],
  );
  assert.throws(() => loadKarpathySplit(file, root, 'restval' as 'train'), /split must be 'train', 'val' or 'test'/);
});

test('Karpathy: only the chosen split is checked beyond its split field', () => {
  const { root, file } = karpathyFixture(validKarpathy); // images[4], a val image, is missing
  assert.equal(loadKarpathySplit(file, root, 'test').items.length, 1);
  throwsDatasetError(
    () => loadKarpathySplit(file, root, 'val'),
    'missing-image',
    file,
    'images[4] (gone.jpg)',
    join(root, 'val2014', 'gone.jpg'),
  );
});

test('Karpathy: a missing or malformed file is named with its position', () => {
  const { root, file } = karpathyFixture(validKarpathy);
  throwsDatasetError(
    () => loadKarpathySplit(join(root, 'dataset_flickr30k.json'), root, 'test'),
    'missing-file',
    join(root, 'dataset_flickr30k.json'),
  );
  const broken = karpathyFixture('{"images": [\n  {"filename": "t.png", "split": "train",, "sentences": []}\n]}');
  throwsDatasetError(() => loadKarpathySplit(broken.file, broken.root, 'train'), 'malformed-json', `${broken.file}:2:42:`);
  throwsDatasetError(() => loadKarpathySplit(file, join(root, 'nowhere'), 'test'), 'missing-file', join(root, 'nowhere'));
});

test('Karpathy: bad records name their index, file name and field', () => {
  const base = validKarpathy[1] as Record<string, unknown>;
  const cases: [object, BadRecordReason, string[]][] = [
    [{ ...base, split: undefined }, 'missing-field', ['images[0] (v.jpg)', '"split"']],
    [{ ...base, split: 'dev' }, 'invalid-field', ['images[0] (v.jpg)', '"split" is "dev"']],
    [{ ...base, filename: undefined }, 'missing-field', ['images[0]:', '"filename"']],
    [{ ...base, sentences: undefined }, 'missing-field', ['images[0] (v.jpg)', '"sentences"']],
    [{ ...base, sentences: [sentence('ok'), { tokens: [] }] }, 'missing-field', ['images[0] (v.jpg) sentences[1]', '"raw"']],
    [{ ...base, sentences: [sentence('ok'), sentence('  ')] }, 'empty-caption', ['images[0] (v.jpg) sentences[1]', 'empty']],
    [{ ...base, filename: 'notes.jpg' }, 'not-an-image', ['images[0] (notes.jpg)', join('val2014', 'notes.jpg'), 'not a PNG']],
  ];
  for (const [record, reason, fragments] of cases) {
    const { root, file } = karpathyFixture([record]);
    throwsDatasetError(() => loadKarpathySplit(file, root, 'test'), reason, file, ...fragments);
  }
  const duplicate = karpathyFixture([base, { ...base }]);
  throwsDatasetError(() => loadKarpathySplit(duplicate.file, duplicate.root, 'test'), 'duplicate-id', 'images[1] (v.jpg)', 'id "2"');
});

test('Karpathy: skip mode leaves bad records and sentences out and counts them', () => {
  const base = validKarpathy[1] as Record<string, unknown>;
  const { root, file } = karpathyFixture([
    { ...base, sentences: [sentence('kept'), sentence(''), { tokens: [] }] }, // empty-caption, missing-field
    { ...base, cocoid: 20, split: 'dev' }, // invalid-field
    { ...base, cocoid: 21, filename: 'gone.jpg' }, // missing-image
    { ...base, cocoid: 22, sentences: [sentence(' ')] }, // empty-caption, then no-captions
    { ...base, cocoid: 23, split: 'train', filename: 'gone.jpg' }, // another split: not checked
  ]);
  const data = loadKarpathySplit(file, root, 'test', { onBadRecord: 'skip' });
  assert.deepEqual(
    data.items.map((item) => [item.id, item.captions]),
    [['2', ['kept']]],
  );
  assert.deepEqual(data.skipped, { 'empty-caption': 2, 'missing-field': 1, 'invalid-field': 1, 'missing-image': 1, 'no-captions': 1 });
});

// ---- JSONL manifests ----

function jsonlFixture(lines: (object | string)[]): { dir: string; file: string } {
  const dir = folder();
  write(dir, 'img/a.png', pngBytes());
  write(dir, 'img/b.jpg', jpegBytes());
  write(dir, 'img/notes.png', 'text');
  const text = lines.map((line) => (typeof line === 'string' ? line : JSON.stringify(line))).join('\n') + '\n';
  return { dir, file: write(dir, 'manifest.jsonl', text) };
}

test('JSONL: items hold any subset of image, text and vector; paths are relative to the manifest, or absolute', () => {
  const elsewhere = folder();
  const absolute = write(elsewhere, 'abs.jpg', jpegBytes());
  const { dir, file } = jsonlFixture([
    { id: 'a', image: 'img/a.png', text: 'a red pixel ' },
    { id: 2, text: ['first', 'second'], vector: [0.5, -1], label: 3 },
    '',
    { id: 'v', vector: [1, 2] },
    { id: 'abs', image: absolute },
    '   ',
    '{"id": "crlf", "image": "./img/b.jpg"}\r',
  ]);
  // The absolute path lies in another folder, which only allowOutsideImages permits (tests/data_safety.test.ts).
  const data = loadJsonlManifest(file, { allowOutsideImages: true });
  assert.equal(data.source, file);
  assert.deepEqual(data.skipped, {});
  assert.deepEqual(data.items, [
    { id: 'a', image: join(dir, 'img', 'a.png'), captions: ['a red pixel'] },
    { id: '2', captions: ['first', 'second'], extra: { label: 3, vector: [0.5, -1] } },
    { id: 'v', captions: [], extra: { vector: [1, 2] } },
    { id: 'abs', image: absolute, captions: [] },
    { id: 'crlf', image: join(dir, 'img', 'b.jpg'), captions: [] },
  ]);
});

test('JSONL: a missing manifest is named', () => {
  const dir = folder();
  throwsDatasetError(() => loadJsonlManifest(join(dir, 'nope.jsonl')), 'missing-file', join(dir, 'nope.jsonl'), 'no such file');
});

test('JSONL: a malformed line is reported with its line number and column', () => {
  const { file } = jsonlFixture([{ id: 'a', text: 'ok' }, '', '{"id": "b", "text": "unterminated}', '{"id": "c" "text": "x"}']);
  const err = throwsDatasetError(() => loadJsonlManifest(file), 'malformed-json', `${file}:3:`);
  assert.equal(err.line, 3);
  assert.equal(err.column, 35); // V8: "Unterminated string in JSON at position 34", just past the line's end
  const skipped = loadJsonlManifest(file, { onBadRecord: 'skip' });
  assert.deepEqual(skipped.skipped, { 'malformed-json': 2 });
  assert.deepEqual(
    skipped.items.map((item) => item.id),
    ['a'],
  );
});

test('JSONL: bad lines name the line, the id and the field', () => {
  const cases: [object | string, BadRecordReason, string[]][] = [
    [{ text: 'no id' }, 'missing-field', [':2:', '"id"']],
    [{ id: true, text: 'x' }, 'invalid-field', [':2:', '"id" is boolean']],
    ['[1, 2]', 'invalid-field', [':2:', 'an array, expected an object']],
    [{ id: 'first', text: 'again' }, 'duplicate-id', [':2 (id "first")', 'repeats id']],
    [{ id: 'x' }, 'no-modality', [':2 (id "x")', 'none of "image", "text" and "vector"']],
    [{ id: 'x', text: ['ok', 7] }, 'invalid-field', [':2 (id "x")', '"text"[1] is number']],
    [{ id: 'x', text: ['ok', ' '] }, 'empty-caption', [':2 (id "x")', '"text"[1] is empty']],
    [{ id: 'x', text: '' }, 'empty-caption', [':2 (id "x")', '"text" is empty']],
    [{ id: 'x', vector: [1, 'a'] }, 'invalid-field', [':2 (id "x")', '"vector" must be']],
    [{ id: 'x', vector: [1, 2, 3] }, 'invalid-field', [':2 (id "x")', '"vector" has 3 numbers but earlier lines have 2']],
    [{ id: 'x', image: 'img/gone.png' }, 'missing-image', [':2 (id "x")', join('img', 'gone.png'), 'does not exist']],
    [{ id: 'x', image: 'img/notes.png' }, 'not-an-image', [':2 (id "x")', join('img', 'notes.png'), 'not a PNG, JPEG, WebP or GIF']],
    [{ id: 'x', image: 5 }, 'invalid-field', [':2 (id "x")', '"image" must be']],
  ];
  for (const [line, reason, fragments] of cases) {
    const { file } = jsonlFixture([{ id: 'first', text: 'fine', vector: [0, 1] }, line]);
    throwsDatasetError(() => loadJsonlManifest(file), reason, file, ...fragments);
  }
});

test('JSONL: skip mode drops bad lines and empty texts, and counts them', () => {
  const { dir, file } = jsonlFixture([
    { id: 'a', image: 'img/a.png', text: ['keep', ''] }, // empty-caption; the line stays
    { id: 'b', text: '   ' }, // empty-caption, then no-modality
    { id: 'c', image: 'img/gone.png', text: 'x' }, // missing-image
    'not json', // malformed-json
    { id: 'a', text: 'duplicate' }, // duplicate-id
    { text: 'no id' }, // missing-field
    { id: 'd', vector: [3] },
  ]);
  const data = loadJsonlManifest(file, { onBadRecord: 'skip' });
  assert.deepEqual(data.items, [
    { id: 'a', image: join(dir, 'img', 'a.png'), captions: ['keep'] },
    { id: 'd', captions: [], extra: { vector: [3] } },
  ]);
  assert.deepEqual(data.skipped, {
    'empty-caption': 2,
    'no-modality': 1,
    'missing-image': 1,
    'malformed-json': 1,
    'duplicate-id': 1,
    'missing-field': 1,
  });
});
