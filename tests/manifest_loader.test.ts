// The mixed-modality manifest loader: which rows of a batch have which modality, what happens to
// an image that cannot be decoded (fail with the file named, or skip and keep the item's other
// modalities), and training the aligner on a JSONL manifest where items lack modalities.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { manualSeed } from '../src/index.js';
import { loadJsonlManifest } from '../src/data/jsonl.js';
import { ManifestLoader, type ManifestBatch } from '../src/data/manifest_loader.js';
import { ImageDecodePool } from '../src/data/image_pool.js';
import { ImageModality } from '../src/modalities/image/index.js';
import { textModality } from '../src/modalities/text/index.js';
import { vectorModality } from '../src/modalities/vector/index.js';
import { AlignModel } from '../src/align/model.js';
import { trainAlignment } from '../src/align/train.js';
import { manifestBatches } from '../src/align/batches.js';
import { scratchDir } from './scratch_dir.js';

const dir = scratchDir('byol-manifest-');
const pool = new ImageDecodePool({ size: 1 });
/** Image i is solid grey i·20, so its decoded value names it. */
const greyOf = (i: number): number => i * 20;

// Rows (ids 0..6): 0 image+text, 1 text only, 2 vector+text, 3 image only, 4 image+vector,
// 5 a corrupt image + text, 6 a corrupt image alone.
const records = [
  { id: 0, image: 'g0.png', text: ['zero', 'nought'] },
  { id: 1, text: 'one' },
  { id: 2, text: 'two', vector: [2, 2, 2] },
  { id: 3, image: 'g3.png' },
  { id: 4, image: 'g4.png', vector: [4, 4, 4] },
  { id: 5, image: 'corrupt.png', text: 'five' },
  { id: 6, image: 'corrupt.png' },
];

before(async () => {
  for (const i of [0, 3, 4]) {
    const v = greyOf(i);
    await sharp({ create: { width: 8, height: 8, channels: 3, background: { r: v, g: v, b: v } } })
      .png()
      .toFile(join(dir, `g${i}.png`));
  }
  const png = readFileSync(join(dir, 'g0.png'));
  writeFileSync(join(dir, 'corrupt.png'), png.subarray(0, png.length - 20)); // PNG signature, truncated data
  writeFileSync(join(dir, 'all.jsonl'), records.map((r) => JSON.stringify(r)).join('\n') + '\n');
  writeFileSync(
    join(dir, 'good.jsonl'),
    records
      .slice(0, 5)
      .map((r) => JSON.stringify(r))
      .join('\n') + '\n',
  );
});
after(async () => {
  await pool.close();
});

async function collect(loader: ManifestLoader, epoch = 0): Promise<ManifestBatch[]> {
  const out: ManifestBatch[] = [];
  for await (const b of loader.epoch(epoch)) out.push(b);
  return out;
}

test('each batch says which rows have each modality, with their data in row order', async () => {
  const dataset = loadJsonlManifest(join(dir, 'good.jsonl'));
  const loader = new ManifestLoader(dataset, { batchSize: 3, size: 4, shuffle: false, dropLast: false, pool });
  const [first, second] = await collect(loader);
  assert.deepEqual(first!.indices, [0, 1, 2]);
  assert.deepEqual(first!.image!.rows, [0]);
  assert.deepEqual(first!.image!.data.shape, [1, 3, 4, 4]);
  assert.equal(first!.image!.data.toFlatArray()[0], greyOf(0));
  assert.deepEqual(first!.text!.rows, [0, 1, 2]);
  assert.ok(['zero', 'nought'].includes(first!.text!.data[0]!));
  assert.deepEqual(first!.text!.data.slice(1), ['one', 'two']);
  assert.deepEqual(first!.vector, { rows: [2], data: [[2, 2, 2]] });
  assert.deepEqual(second!.indices, [3, 4]);
  assert.deepEqual(second!.image!.rows, [0, 1]);
  assert.deepEqual(
    [0, 1].map((r) => second!.image!.data.toFlatArray()[r * 3 * 16]),
    [greyOf(3), greyOf(4)],
  );
  assert.equal(second!.text, undefined);
  assert.deepEqual(second!.vector, { rows: [1], data: [[4, 4, 4]] });
  assert.equal(loader.batchesPerEpoch, 2);
  await loader.close();
});

test('epochs are reproducible shuffles of every item', async () => {
  const dataset = loadJsonlManifest(join(dir, 'good.jsonl'));
  const a = new ManifestLoader(dataset, { batchSize: 2, size: 4, seed: 7, pool });
  const b = new ManifestLoader(dataset, { batchSize: 2, size: 4, seed: 7, pool });
  assert.deepEqual(a.order(3), b.order(3));
  assert.deepEqual([...a.order(3)].sort(), [0, 1, 2, 3, 4]);
  assert.notDeepEqual(a.order(0), a.order(1));
});

test('an undecodable image fails naming the file, or under skip is counted and only the image is dropped', async () => {
  const dataset = loadJsonlManifest(join(dir, 'all.jsonl'));
  const failing = new ManifestLoader(dataset, { batchSize: 7, size: 4, shuffle: false, dropLast: false, pool });
  await assert.rejects(collect(failing), /corrupt\.png/);

  const skipping = new ManifestLoader(dataset, { batchSize: 7, size: 4, shuffle: false, dropLast: false, pool, onBadRecord: 'skip' });
  const [batch] = await collect(skipping);
  // Item 6 had nothing but the corrupt image, so it leaves the batch; item 5 keeps its text.
  assert.deepEqual(batch!.indices, [0, 1, 2, 3, 4, 5]);
  assert.deepEqual(batch!.image!.rows, [0, 3, 4]);
  assert.deepEqual(batch!.text!.rows, [0, 1, 2, 5]);
  assert.equal(batch!.text!.data[3], 'five');
  assert.deepEqual(skipping.skipped, { 'not-an-image': 2 });
  // The next epoch does not try the bad file again.
  const [again] = await collect(skipping, 1);
  assert.deepEqual(again!.indices, [0, 1, 2, 3, 4, 5]);
  assert.deepEqual(skipping.skipped, { 'not-an-image': 2 });
});

test('under skip, an item whose only modality was a dropped image leaves the order of later epochs', async () => {
  const dataset = loadJsonlManifest(join(dir, 'all.jsonl'));
  const loader = new ManifestLoader(dataset, { batchSize: 2, size: 4, shuffle: false, dropLast: false, pool, onBadRecord: 'skip' });
  assert.equal(loader.batchesPerEpoch, 4); // 7 items
  // Epoch 0 finds both corrupt images; item 6 had nothing else, so its batch is empty and not yielded.
  assert.deepEqual(
    (await collect(loader, 0)).map((b) => b.indices),
    [
      [0, 1],
      [2, 3],
      [4, 5],
    ],
  );
  // From epoch 1 on item 6 is not in the order, so no batch is short for it.
  assert.deepEqual(loader.order(1), [0, 1, 2, 3, 4, 5]);
  assert.equal(loader.batchesPerEpoch, 3);
  assert.deepEqual(
    (await collect(loader, 1)).map((b) => b.indices.length),
    [2, 2, 2],
  );
});

test('the aligner trains on a manifest whose items lack modalities, every term finite', async () => {
  manualSeed(11);
  const dataset = loadJsonlManifest(join(dir, 'good.jsonl'));
  const captions = dataset.items.flatMap((i) => i.captions);
  const image = new ImageModality({ size: 8, channels: 3 }, { pool });
  const text = await textModality.fit({ vocabSize: 64, maxLength: 8, dModel: 16, layers: 1, heads: 2 }, captions);
  const vector = await vectorModality.fit({ featureDim: 16, hiddenDims: [16] }, [
    [2, 2, 2],
    [4, 4, 4],
  ]);
  const modalities = [image, text, vector];
  const model = new AlignModel(
    modalities.map((m) => ({ name: m.name, create: () => m.createEncoder(), featureDim: m.featureDim })),
    { projectionHiddenDim: 16, projectionDim: 8, predictionHiddenDim: 16 },
  );
  const loader = new ManifestLoader(dataset, { batchSize: 5, size: 8, pool });
  const log = await trainAlignment(model, {
    modalities,
    batches: (epoch) => manifestBatches(loader, modalities, epoch),
    stepsPerEpoch: 1,
    epochs: 2,
    batchSize: 5,
    weights: { intraWeight: 1, crossWeight: 1, infoNceWeight: 0 },
  });
  assert.equal(log.length, 2);
  const terms = log[1]!.terms;
  // Every modality's intra term and every ordered pair's cross term, each a finite number.
  for (const key of ['intra/image', 'intra/text', 'intra/vector', 'cross/image->text', 'cross/text->vector', 'cross/vector->image']) {
    assert.ok(Number.isFinite(terms[key]), `${key} = ${terms[key]}`);
  }
  // Only item 0 has image and text: the image–text cross term averages over that one item, so it
  // is one item's ℓ(q1, z2) + ℓ(q2, z1), between 0 and 8.
  assert.ok(terms['cross/image->text']! > 0 && terms['cross/image->text']! < 8);
  await loader.close();
});

test('manifestBatches collates batch k + 1 before handing over batch k, and yields the batches it would one at a time', async () => {
  const dataset = loadJsonlManifest(join(dir, 'good.jsonl'));
  const captions = dataset.items.flatMap((i) => i.captions);
  const text = await textModality.fit({ vocabSize: 64, maxLength: 8, dModel: 16, layers: 1, heads: 2 }, captions);
  const collated: string[][] = [];
  // manifestBatches asks a modality for its name and its collate only.
  const recording = {
    name: text.name,
    collate: (items: string[]) => {
      collated.push(items);
      return text.collate(items);
    },
  } as unknown as typeof text;
  const loader = new ManifestLoader(dataset, { batchSize: 1, size: 8, pool, shuffle: false });
  // Items 0, 1, 2 have captions (3 does not, 4 neither): batches 0, 1, 2 hold text.
  const batches = manifestBatches(loader, [recording], 0);
  const first = await batches.next();
  assert.equal(first.done, false);
  // Handed batch 0, the generator has already started batch 1's collation (its caption).
  assert.equal(collated.length, 2);
  assert.deepEqual(collated[1], ['one']);
  const second = await batches.next();
  assert.equal(collated.length, 3);
  assert.deepEqual(collated[2], ['two']);
  const rest: unknown[] = [];
  for await (const b of batches) rest.push(b);
  // Batches 3 and 4 have no caption and so no input: 3 batches in all, as one at a time.
  assert.equal(rest.length, 1);
  for (const b of [first.value, second.value, rest[0]] as { inputs: Map<string, { batch: { shape: number[] } }> }[])
    assert.deepEqual([...b.inputs.keys()], ['text']);
  // Stopping early disposes the batch made ahead and ends the loader's epoch.
  const again = manifestBatches(loader, [recording], 1);
  await again.next();
  assert.deepEqual(await again.return(undefined), { done: true, value: undefined });
  await loader.close();
});
