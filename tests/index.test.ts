// The search index: what `index` stores (the embeddings `embed` computes, the manifest's
// metadata, the checkpoint that made them), upserts and deletes, exact cosine search against a
// brute-force ranking, the filter's whitelist, and the refusal of another checkpoint.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as lancedb from '@lancedb/lancedb';
import {
  buildIndex,
  deleteItems,
  filterSql,
  searchIndex,
  IndexQueryError,
  CheckpointMismatchError,
  SearchIndex,
  type SearchRequest,
} from '../src/index/index.js';
import { fileSha256 } from '../src/index/table.js';
import { cli, useCliFixture, withChangedCaptions } from './cli_fixture.js';
import { assertSameHits } from './helpers.js';

const fixture = useCliFixture();

/** Every row of a table: id → embedding (and the row). */
async function tableRows(db: string, table = 'items'): Promise<Map<string, Record<string, unknown>>> {
  const connection = await lancedb.connect(db);
  const rows = await (await connection.openTable(table)).query().toArray();
  connection.close();
  return new Map(
    rows.map((r: Record<string, unknown>) => [String(r.id), { ...r, embedding: Array.from(r.embedding as Iterable<number>) }]),
  );
}

/** `byol-align embed` of one modality's input, id → embedding. */
function embedded(run: string, modality: string, input: string): Map<string, number[]> {
  const r = cli('embed', '--checkpoint', run, '--modality', modality, '--input', input, '--threads', '1');
  assert.equal(r.status, 0, r.stderr);
  return new Map(
    r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { id: string; embedding: number[] })
      .map((e) => [e.id, e.embedding]),
  );
}

const dot = (a: number[], b: number[]): number => a.reduce((s, v, i) => s + v * b[i]!, 0);

function closeTo(actual: number[], expected: number[], tolerance: number, what: string): void {
  assert.equal(actual.length, expected.length, what);
  actual.forEach((v, i) => assert.ok(Math.abs(v - expected[i]!) < tolerance, `${what}[${i}]: ${v} vs ${expected[i]}`));
}

let dbCount = 0;
const newDb = (): string => join(fixture.dir, `db-${dbCount++}`);
const indexOptions = (db: string) => ({
  checkpoint: fixture.trainedRun(),
  data: `coco:${fixture.annotations}`,
  images: fixture.images,
  db,
});

test('index stores every image and caption with the embedding `embed` computes, and the checkpoint that made it', async () => {
  const run = fixture.trainedRun();
  const db = newDb();
  const result = await buildIndex(indexOptions(db));
  assert.deepEqual(result.written, { image: 24, text: 48 });
  assert.equal(result.rows, 72);
  assert.equal(result.unchanged, 0);
  const rows = await tableRows(db);
  const checkpoint = result.provenance.checkpoint;
  assert.match(checkpoint, /step-000000003\.safetensors$/);
  assert.equal(result.provenance.checkpointSha256, fileSha256(checkpoint));
  assert.equal(result.provenance.distance, 'cosine');

  const images = embedded(run, 'image', fixture.images);
  // COCO ids in the fixture are file order: red-square.png is image 0.
  const red = rows.get('image:0')!;
  assert.equal(red.media, join(fixture.images, 'red-square.png'));
  assert.equal(red.modality, 'image');
  closeTo(red.embedding as number[], images.get('red-square.png')!, 1e-5, 'image:0');

  const captions = join(fixture.dir, 'captions.txt');
  writeFileSync(captions, 'a red square\nsquare in red\n');
  const texts = embedded(run, 'text', captions);
  assert.equal(rows.get('text:0:0')!.text, 'a red square');
  closeTo(rows.get('text:0:0')!.embedding as number[], texts.get('1')!, 1e-5, 'text:0:0');
  closeTo(rows.get('text:0:1')!.embedding as number[], texts.get('2')!, 1e-5, 'text:0:1');
  assert.equal(result.provenance.dim, images.get('red-square.png')!.length);
});

test('search ranks rows by cosine similarity exactly as brute force over the stored embeddings does', async () => {
  const run = fixture.trainedRun();
  const db = newDb();
  await buildIndex(indexOptions(db));
  const rows = await tableRows(db);
  const queryFile = join(fixture.dir, 'query.txt');
  writeFileSync(queryFile, 'a blue dot\n');
  const query = embedded(run, 'text', queryFile).get('1')!;
  const expected = [...rows.values()]
    .filter((r) => r.modality === 'image')
    .map((r) => ({ id: String(r.id), score: dot(query, r.embedding as number[]) }))
    .sort((a, b) => b.score - a.score)
    .slice(0, 5);
  const hits = await searchIndex({ db, query: { text: 'a blue dot' }, k: 5, modality: 'image' });
  assert.deepEqual(
    hits.map((h) => h.id),
    expected.map((e) => e.id),
  );
  hits.forEach((h, i) => {
    assert.equal(h.rank, i + 1);
    assert.ok(Math.abs(h.score - expected[i]!.score) < 1e-4, `${h.id}: ${h.score} vs ${expected[i]!.score}`);
  });
  const page2 = await searchIndex({ db, query: { text: 'a blue dot' }, k: 2, offset: 2, modality: 'image' });
  assert.deepEqual(
    page2.map((h) => [h.rank, h.id]),
    [
      [3, expected[2]!.id],
      [4, expected[3]!.id],
    ],
  );
  // Without a filter the search is a matrix product in memory; with one, LanceDB's flat scan: the same answers.
  for (const modality of [undefined, 'image', 'text']) {
    const inMemory = await searchIndex({ db, query: { image: join(fixture.images, 'red-dot.png') }, k: 7, offset: 3, modality });
    const scanned = await searchIndex({
      db,
      query: { image: join(fixture.images, 'red-dot.png') },
      k: 7,
      offset: 3,
      modality,
      where: { id: { ne: '' } },
    });
    assert.deepEqual(
      inMemory.map((h) => [h.rank, h.id, h.text, h.media]),
      scanned.map((h) => [h.rank, h.id, h.text, h.media]),
      String(modality),
    );
    inMemory.forEach((h, i) => assert.ok(Math.abs(h.score - scanned[i]!.score) < 1e-5));
  }
  // A point of the space searches as itself: a row's own embedding finds that row first, at score 1.
  const own = rows.get('text:5:1')!.embedding as number[];
  const [first] = await searchIndex({ db, query: { embedding: own }, k: 1 });
  assert.equal(first!.id, 'text:5:1');
  assert.ok(Math.abs(first!.score - 1) < 1e-5);
});

test("bf16Queries embeds a search's queries under bfloat16 autocast: scores near float32's, embed unchanged, not with exact", async () => {
  const db = newDb();
  await buildIndex(indexOptions(db));
  const [bf16, float32] = [await SearchIndex.open({ db, bf16Queries: true }), await SearchIndex.open({ db })];
  try {
    const queries = [{ text: 'a blue dot' }, { text: 'frame in purple' }, { image: join(fixture.images, 'red-dot.png') }];
    const exactQueries = await float32.embed(queries);
    assert.deepEqual(await bf16.embed(queries), exactQueries, 'embed is float32 either way, bit for bit');
    const rows = await tableRows(db);
    const k = 6;
    const [hits] = await bf16.searchMany([{ queries, options: { k, modality: 'text' } }]);
    let moved = 0;
    hits!.forEach((list, q) => {
      // Every row's float32 score for this query, best first: the answer must be the float32 top k
      // up to rows that nearly tie, each scored within bfloat16's rounding of its float32 score.
      const truth = [...rows.values()]
        .filter((r) => r.modality === 'text')
        .map((r) => dot(Array.from(exactQueries[q]!), r.embedding as number[]))
        .sort((a, b) => b - a);
      assert.equal(list.length, k);
      for (const h of list) {
        const exact = dot(Array.from(exactQueries[q]!), rows.get(h.id)!.embedding as number[]);
        assert.ok(Math.abs(h.score - exact) < 2e-3, `query ${q}, ${h.id}: ${h.score} vs float32 ${exact}`);
        assert.ok(exact >= truth[k - 1]! - 4e-3, `query ${q}, ${h.id}: float32 score ${exact} below the 6th best ${truth[k - 1]}`);
        if (Math.abs(h.score - exact) > 1e-6) moved++;
      }
    });
    assert.ok(moved > 0, 'the queries were embedded in bfloat16: some scores moved');
  } finally {
    await bf16.close();
    await float32.close();
  }
  await assert.rejects(SearchIndex.open({ db, exact: true, bf16Queries: true }), /exact searches in float32 alone/);
  const both = cli('search', '--db', db, '--text', 'a blue dot', '--exact', '--bf16-queries');
  assert.notEqual(both.status, 0);
  assert.match(both.stderr, /--exact searches in float32 alone; it cannot be given with --bf16-queries/);
});

test('searchMany answers each search of a batch as search answers it alone; a bad query fails the batch', async () => {
  const db = newDb();
  await buildIndex(indexOptions(db));
  const index = await SearchIndex.open({ db });
  try {
    const requests: SearchRequest[] = [
      { queries: [{ text: 'a blue dot' }], options: { k: 5, modality: 'image' } },
      { queries: [{ text: 'a red square' }, { image: join(fixture.images, 'green-stripe.png') }], options: { k: 3, offset: 2 } },
      { queries: [{ text: 'frame in purple' }], options: { k: 4, modality: 'text', where: { item: { in: ['1', '2', '3', '4'] } } } },
      { queries: [{ image: join(fixture.images, 'red-dot.png') }] },
      { queries: [{ text: 'a yellow stripe' }], options: { k: 20, offset: 30, modality: 'text' } },
    ];
    const together = await index.searchMany(requests);
    assert.equal(together.length, requests.length);
    for (const [i, { queries, options }] of requests.entries()) {
      const alone = await index.search(queries, options);
      assert.equal(together[i]!.length, queries.length);
      together[i]!.forEach((hits, q) => assertSameHits(hits, alone[q]!, `request ${i}, query ${q}`));
    }
    // The defaults (k 10) and the whole table when no modality is named; 48 captions less 30 skipped.
    assert.equal(together[3]![0]!.length, 10);
    assert.equal(together[4]![0]!.length, 18);
    const truncated = join(fixture.dir, 'truncated.png');
    writeFileSync(truncated, readFileSync(join(fixture.images, 'red-dot.png')).subarray(0, 60));
    await assert.rejects(index.searchMany([...requests, { queries: [{ image: truncated }] }]), IndexQueryError);
  } finally {
    await index.close();
  }
});

test('re-indexing embeds only new or changed items, and deleteItems removes rows by id', async () => {
  const db = newDb();
  await buildIndex(indexOptions(db));
  const before = await tableRows(db);
  const again = await buildIndex(indexOptions(db));
  assert.deepEqual(again.written, {});
  assert.equal(again.unchanged, 72);

  await withChangedCaptions(fixture, async () => {
    const changed = await buildIndex(indexOptions(db));
    assert.deepEqual(changed.written, { text: 2 });
    // Item 3 gained an annotation id: its other rows keep their embeddings, with the new metadata.
    assert.equal(changed.metadataUpdated, 3);
    assert.equal(changed.unchanged, 68);
    assert.equal(changed.rows, 73);
    const rows = await tableRows(db);
    assert.equal(rows.get('text:0:0')!.text, 'a crimson square');
    assert.equal(rows.get('text:3:2')!.text, 'a red frame again');
    assert.deepEqual(JSON.parse(String(rows.get('image:3')!.metadata)), { annotationIds: [6, 7, 1000] });
    assert.deepEqual(rows.get('image:3')!.embedding, before.get('image:3')!.embedding);
  });
  assert.equal(await deleteItems({ db, ids: ['text:3:2', 'image:1', 'no-such-id'] }), 2);
  const rows = await tableRows(db);
  assert.equal(rows.size, 71);
  assert.equal(rows.has('image:1'), false);
  assert.equal(rows.has('text:3:2'), false);
});

test('search with another checkpoint is refused, naming both', async () => {
  const run = fixture.trainedRun();
  const db = newDb();
  await buildIndex(indexOptions(db));
  const older = join(run, 'checkpoints', 'step-000000002.safetensors');
  await assert.rejects(
    searchIndex({ db, checkpoint: older, query: { text: 'a red square' } }),
    (err: Error) =>
      err instanceof CheckpointMismatchError && err.message.includes('step-000000003') && err.message.includes('step-000000002'),
  );
  await assert.rejects(
    buildIndex({ ...indexOptions(db), checkpoint: older }),
    /holds embeddings of .*step-000000003.*not of .*step-000000002.*--rebuild/,
  );
  const rebuilt = await buildIndex({ ...indexOptions(db), checkpoint: older, rebuild: true });
  assert.equal(rebuilt.rows, 72);
  assert.match(rebuilt.provenance.checkpoint, /step-000000002/);
});

test('filters write quoted SQL over known columns only, and injected quotes match nothing', async () => {
  const columns = new Map([
    ['item', 'string'],
    ['width', 'number'],
    ['ok', 'boolean'],
  ] as const);
  assert.equal(filterSql({ item: "x' OR '1'='1" }, columns), "(`item` = 'x'' OR ''1''=''1')");
  assert.equal(
    filterSql({ width: { gte: 3, lt: 10 }, item: { in: ['a', 'b'] } }, columns),
    "(`width` >= 3) AND (`width` < 10) AND (`item` IN ('a', 'b'))",
  );
  assert.throws(
    () => filterSql({ '1=1; DROP TABLE items; --': 1 }, columns),
    (e: Error) => e instanceof IndexQueryError && /unknown column/.test(e.message),
  );
  assert.throws(() => filterSql({ width: '3 OR 1=1' }, columns), /holds numbers/);
  assert.throws(() => filterSql({ width: { like: '%' } }, columns), /unknown operator 'like'/);
  assert.throws(() => filterSql({ width: Number.NaN }, columns), /holds numbers/);
  assert.throws(() => filterSql({ ok: { gt: true } }, columns), /eq, ne or in/);
  assert.throws(() => filterSql('modality = image', columns), /expected an object/);

  const db = newDb();
  await buildIndex(indexOptions(db));
  const hits = await searchIndex({ db, query: { text: 'a red square' }, k: 50, where: { item: { in: ['2', '7'] } } });
  assert.deepEqual([...new Set(hits.map((h) => h.item))].sort(), ['2', '7']);
  assert.equal(hits.length, 6); // each item: its image and two captions
  assert.deepEqual(await searchIndex({ db, query: { text: 'a red square' }, where: { item: "0' OR '1'='1" } }), []);
});

test('the index and search commands: progress and a summary on stderr, a table or JSON on stdout', () => {
  const run = fixture.trainedRun();
  const db = newDb();
  const built = cli('index', '--checkpoint', run, ...fixture.data, '--db', db, '--threads', '1');
  assert.equal(built.status, 0, built.stderr);
  assert.match(built.stderr, /\[#{20}\] 72\/72 rows/);
  assert.doesNotMatch(built.stderr, /WARN/); // LanceDB's own log stays quiet
  assert.match(built.stderr, /indexed 24 image, 48 text \(0 unchanged\); table items in .* has 72 rows/);
  const json = cli('search', '--db', db, '--text', 'a green stripe', '--k', '3', '--modality', 'text', '--json', '--threads', '1');
  assert.equal(json.status, 0, json.stderr);
  const parsed = JSON.parse(json.stdout) as {
    query: { text: string };
    hits: { rank: number; modality: string; text: string; score: number }[];
  };
  assert.deepEqual(parsed.query, { text: 'a green stripe' });
  assert.deepEqual(
    parsed.hits.map((h) => [h.rank, h.modality]),
    [
      [1, 'text'],
      [2, 'text'],
      [3, 'text'],
    ],
  );
  assert.ok(parsed.hits[0]!.score >= parsed.hits[1]!.score && parsed.hits[1]!.score >= parsed.hits[2]!.score);
  const table = cli(
    'search',
    '--db',
    db,
    '--image',
    join(fixture.images, 'blue-dot.png'),
    '--k',
    '2',
    '--modality',
    'image',
    '--threads',
    '1',
  );
  assert.equal(table.status, 0, table.stderr);
  const lines = table.stdout.trim().split('\n');
  assert.match(lines[0]!, /^rank\s+score\s+id\s+caption or path$/);
  // An indexed image finds itself first, at cosine 1.
  assert.match(lines[1]!, /^\s*1\s+1\.0000\s+image:\d+\s+.*blue-dot\.png$/);
  assert.equal(lines.length, 3);
  const bad = cli('search', '--db', db, '--text', 'x', '--where', '{"colour": "red"}');
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /unknown column 'colour'/);
  const both = cli('search', '--db', db, '--text', 'x', '--image', 'y.png');
  assert.equal(both.status, 2);
  assert.match(both.stderr, /exactly one of --text, --image, --vector or --embedding, got --text and --image/);
  const deleted = cli('index', '--db', db, '--delete', 'image:0', 'text:0:0');
  assert.equal(deleted.status, 0, deleted.stderr);
  assert.match(deleted.stderr, /removed 2 of the 2 ids/);
});

test("a manifest's scalar fields become filterable columns; other fields stay in the metadata JSON", async () => {
  const manifest = join(fixture.dir, 'meta.jsonl');
  const lines = [
    { id: 'a', image: 'images/red-square.png', text: 'a red square', colour: 'red', size: 1, featured: true, tags: ['x'], mixed: 'one' },
    { id: 'b', image: 'images/red-dot.png', text: 'a red dot', colour: 'red', size: 3, featured: false, tags: [], mixed: 2 },
    { id: 'c', image: 'images/blue-dot.png', text: 'a blue dot', colour: 'blue', size: 2, featured: true, vector: [0.5, 0.5] },
    { id: 'd', text: 'a green frame', colour: 'green' },
  ];
  writeFileSync(manifest, lines.map((l) => JSON.stringify(l)).join('\n'));
  const db = newDb();
  const result = await buildIndex({ checkpoint: fixture.trainedRun(), data: `jsonl:${manifest}`, db });
  assert.deepEqual(result.written, { image: 3, text: 4 });
  assert.deepEqual(result.skippedModalities, ['vector']); // the fixture's model has no vector encoder
  const items = async (where: Record<string, unknown>): Promise<string[]> =>
    [...new Set((await searchIndex({ db, query: { text: 'red' }, k: 100, where: where as never })).map((h) => h.item))].sort();
  assert.deepEqual(await items({ colour: 'red' }), ['a', 'b']);
  assert.deepEqual(await items({ size: { gte: 2 } }), ['b', 'c']);
  assert.deepEqual(await items({ featured: true, colour: { ne: 'red' } }), ['c']);
  assert.deepEqual(await items({ colour: { in: ['green', 'blue'] } }), ['c', 'd']);
  await assert.rejects(searchIndex({ db, query: { text: 'red' }, where: { mixed: 'one' } }), /unknown column 'mixed'/);
  await assert.rejects(searchIndex({ db, query: { text: 'red' }, where: { tags: 'x' } }), /unknown column 'tags'/);
  const [hit] = await searchIndex({ db, query: { text: 'red' }, k: 1, where: { item: 'a' }, modality: 'image' });
  assert.deepEqual(hit!.metadata, { colour: 'red', size: 1, featured: true, tags: ['x'], mixed: 'one' });
});
