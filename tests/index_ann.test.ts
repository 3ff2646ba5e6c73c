// The ANN tables (src/index/ann.ts): a modality at or above the threshold gets a table of its own
// with a LanceDB vector index; its searches go there and, on a table this small (every partition
// probed, candidates re-ranked by their full vectors), answer exactly as the exact in-memory search
// does; upserts, deletes and a threshold raised above the rows keep it in step.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import * as lancedb from '@lancedb/lancedb';
import { buildIndex, deleteItems, SearchIndex, type SearchRequest } from '../src/index/index.js';
import { annTableName } from '../src/index/ann.js';
import { useCliFixture, withChangedCaptions } from './cli_fixture.js';
import { assertSameHits } from './helpers.js';

const fixture = useCliFixture();
let dbCount = 0;
const newDb = (): string => join(fixture.dir, `ann-db-${dbCount++}`);
const indexOptions = (db: string, annMinRows: number) => ({
  checkpoint: fixture.trainedRun(),
  data: `coco:${fixture.annotations}`,
  images: fixture.images,
  db,
  annMinRows,
});

/** The ANN table's ids and whether it has a vector index on `embedding`. */
async function annTable(db: string, modality: string): Promise<{ ids: Set<string>; indexed: boolean } | undefined> {
  const connection = await lancedb.connect(db);
  try {
    const name = annTableName('items', modality);
    if (!(await connection.tableNames()).includes(name)) return undefined;
    const table = await connection.openTable(name);
    const ids = new Set((await table.query().select(['id']).toArray()).map((r: Record<string, unknown>) => String(r.id)));
    const indexed = (await table.listIndices()).some((i) => i.columns.includes('embedding'));
    return { ids, indexed };
  } finally {
    connection.close();
  }
}

const requests: SearchRequest[] = [
  { queries: [{ text: 'a blue dot' }, { text: 'a red square' }], options: { k: 5, modality: 'image' } },
  { queries: [{ image: join(fixture.images, 'red-dot.png') }], options: { k: 7, offset: 3, modality: 'text' } },
  { queries: [{ image: join(fixture.images, 'green-stripe.png') }], options: { k: 12 } },
];

test('a modality at the threshold is searched in its ANN table, with the answers of exact search', async () => {
  const exactDb = newDb();
  const annDb = newDb();
  const exact = await buildIndex(indexOptions(exactDb, 1000));
  assert.deepEqual(exact.ann, {});
  // 24 images and 48 captions: a threshold of 30 indexes the captions only, 20 both.
  const partly = await buildIndex(indexOptions(annDb, 30));
  assert.deepEqual(partly.ann, { text: 'built' });
  assert.equal(await annTable(annDb, 'image'), undefined);
  const both = await buildIndex(indexOptions(annDb, 20));
  assert.deepEqual(both.ann, { image: 'built', text: 'unchanged' });
  for (const modality of ['image', 'text']) {
    const ann = (await annTable(annDb, modality))!;
    assert.equal(ann.indexed, true, modality);
    assert.equal(ann.ids.size, modality === 'image' ? 24 : 48);
  }
  const [withAnn, inMemory] = [await SearchIndex.open({ db: annDb }), await SearchIndex.open({ db: exactDb })];
  try {
    const [approximate, truth] = [await withAnn.searchMany(requests), await inMemory.searchMany(requests)];
    requests.forEach((r, i) =>
      r.queries.forEach((_, q) => {
        assertSameHits(approximate[i]![q]!, truth[i]![q]!, `request ${i}, query ${q}`, 1e-4);
        assert.deepEqual(
          approximate[i]![q]!.map((h) => [h.text, h.media, h.metadata]),
          truth[i]![q]!.map((h) => [h.text, h.media, h.metadata]),
        );
      }),
    );
  } finally {
    await withAnn.close();
    await inMemory.close();
  }
});

test('re-indexing upserts changed rows into the ANN tables, deletes reach them, and a higher threshold drops them', async () => {
  const db = newDb();
  await buildIndex(indexOptions(db, 20));
  await withChangedCaptions(fixture, async () => {
    const changed = await buildIndex(indexOptions(db, 20));
    assert.deepEqual(changed.ann, { image: 'unchanged', text: 'updated' });
    assert.equal((await annTable(db, 'text'))!.ids.size, 49);
    const index = await SearchIndex.open({ db });
    try {
      // The new caption's own text finds it first: its embedding is the ANN table's.
      const [hits] = await index.search([{ text: 'a red frame again' }], { k: 1, modality: 'text' });
      const first = hits![0];
      assert.equal(first!.id, 'text:3:2');
      assert.ok(Math.abs(first!.score - 1) < 1e-4, String(first!.score));
    } finally {
      await index.close();
    }
  });
  assert.equal(await deleteItems({ db, ids: ['text:3:2', 'image:1'] }), 2);
  assert.equal((await annTable(db, 'text'))!.ids.has('text:3:2'), false);
  assert.equal((await annTable(db, 'image'))!.ids.has('image:1'), false);
  const index = await SearchIndex.open({ db });
  try {
    const [hits] = await index.search([{ image: join(fixture.images, 'red-dot.png') }], { k: 100, modality: 'image' });
    assert.equal(hits!.length, 23);
    assert.equal(
      hits!.some((h) => h.id === 'image:1'),
      false,
    );
  } finally {
    await index.close();
  }
  const raised = await buildIndex(indexOptions(db, 40));
  assert.deepEqual(raised.ann, { image: 'dropped', text: 'updated' });
  assert.equal(await annTable(db, 'image'), undefined);
});
