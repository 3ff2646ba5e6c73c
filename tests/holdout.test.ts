// The validation split held out of the training data by concept.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { holdOutByConcept } from '../src/data/holdout.js';
import type { PairedDataset } from '../src/data/paired.js';

const dataset: PairedDataset = {
  source: '/data/captions.json',
  skipped: {},
  items: Array.from({ length: 400 }, (_, i) => ({
    id: String(i),
    image: `/data/${i}.png`,
    captions: [`caption ${i}`],
    extra: { concept: `concept ${i % 100}` }, // four drawings of each of 100 concepts
  })),
};

test('every drawing of a concept lands on one side, at about the fraction asked, by SHA-1 of val:CONCEPT', () => {
  const { train, val } = holdOutByConcept(dataset, 0.2);
  assert.equal(train.items.length + val.items.length, 400);
  const valConcepts = new Set(val.items.map((i) => i.extra!.concept));
  for (const item of train.items) assert.ok(!valConcepts.has(item.extra!.concept), `${String(item.extra!.concept)} is on both sides`);
  assert.equal(val.items.length, 4 * valConcepts.size);
  // The rule computed independently: the first 32 bits of SHA-1 over 2^32, below the fraction.
  const expected = [...new Set(dataset.items.map((i) => String(i.extra!.concept)))].filter(
    (c) => createHash('sha1').update(`val:${c}`).digest().readUInt32BE(0) / 2 ** 32 < 0.2,
  );
  assert.deepEqual([...valConcepts].sort(), expected.sort());
  assert.ok(valConcepts.size > 10 && valConcepts.size < 30, `${valConcepts.size} of 100 concepts`);
  assert.equal(holdOutByConcept(dataset, 0).val.items.length, 0);
});

test('items without a concept are held out by id', () => {
  const plain = { ...dataset, items: dataset.items.map((i) => ({ id: i.id, image: i.image, captions: i.captions })) };
  const { val } = holdOutByConcept(plain, 0.2);
  const expected = plain.items.filter((i) => createHash('sha1').update(`val:${i.id}`).digest().readUInt32BE(0) / 2 ** 32 < 0.2);
  assert.deepEqual(
    val.items.map((i) => i.id),
    expected.map((i) => i.id),
  );
});
