// The HTTP API through Fastify's inject: every route, the token, paging and batches, and bad
// requests of every kind answered with a 4xx and a message while the server keeps serving; and
// `byol-align serve` started, asked and stopped by SIGTERM.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { chromium } from 'playwright-core';
import {
  buildIndex,
  IndexQueryError,
  SearchIndex,
  type RowHit,
  type SearchHit,
  type SearchQuery,
  type SearchRequest,
} from '../src/index/index.js';
import { buildServer } from '../src/serve/server.js';
import { QueryBatcher } from '../src/serve/query_batcher.js';
import { bearerMatches } from '../src/serve/auth.js';
import { CLI, useCliFixture } from './cli_fixture.js';
import { assertSameHits } from './helpers.js';
import type { FastifyInstance } from 'fastify';

const fixture = useCliFixture();
const TOKEN = 'test-token-0123';
const auth = { authorization: `Bearer ${TOKEN}` };
let db = '';
let index: SearchIndex;
let server: FastifyInstance;

let ready: Promise<void> | undefined;
/** Indexes the fixture's data set and builds the server once, on the first test (after the fixture's own set-up). */
const setUp = (): Promise<void> =>
  (ready ??= (async () => {
    db = join(fixture.dir, 'db');
    await buildIndex({ checkpoint: fixture.trainedRun(), data: `coco:${fixture.annotations}`, images: fixture.images, db });
    index = await SearchIndex.open({ db });
    server = buildServer({ index, token: TOKEN });
  })());
after(async () => {
  await server?.close();
  await index?.close();
});

const post = (url: string, payload: unknown, headers: Record<string, string> = auth) =>
  server.inject({ method: 'POST', url, payload: payload as object, headers });
const png = (name: string): string => readFileSync(join(fixture.images, name)).toString('base64');

/** A multipart/form-data body as a browser sends one: Node's FormData, encoded by Response. */
async function multipart(fields: [name: string, value: string | Blob, filename?: string][]): Promise<{ payload: Buffer; type: string }> {
  const form = new FormData();
  for (const [name, value, filename] of fields) {
    if (typeof value === 'string') form.append(name, value);
    else form.append(name, value, filename);
  }
  const encoded = new Response(form);
  return { payload: Buffer.from(await encoded.arrayBuffer()), type: encoded.headers.get('content-type')! };
}
const file = (bytes: Uint8Array, type = 'image/png'): Blob => new Blob([new Uint8Array(bytes)], { type });
const pngFile = (name: string): Blob => file(readFileSync(join(fixture.images, name)));
/** POSTs a form to `url` through `on` (the shared server by default). */
async function postForm(
  url: string,
  fields: Parameters<typeof multipart>[0],
  headers: Record<string, string> = auth,
  on?: FastifyInstance,
) {
  const { payload, type } = await multipart(fields);
  return (on ?? server).inject({ method: 'POST', url, payload, headers: { ...headers, 'content-type': type } });
}

/** The bytes of a PNG whose header claims `width` × `height` pixels (a decompression bomb's shape). */
function pngClaiming(width: number, height: number): Buffer {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (bytes: Buffer): number => {
    let c = 0xffffffff;
    for (const b of bytes) c = crcTable[(c ^ b) & 0xff]! ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type: string, data: Buffer): Buffer => {
    const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const out = Buffer.alloc(body.length + 8);
    out.writeUInt32BE(data.length, 0);
    body.copy(out, 4);
    out.writeUInt32BE(crc(body), body.length + 4);
    return out;
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8); // 8-bit RGB
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', Buffer.from([0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01])),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

test('GET /healthz answers without a token; /v1/ routes need the right bearer token', async () => {
  await setUp();
  const health = await server.inject({ method: 'GET', url: '/healthz' });
  assert.equal(health.statusCode, 200);
  assert.deepEqual(health.json(), { status: 'ok' });
  const query = { query: { text: 'a red square' } };
  for (const headers of [
    {},
    { authorization: 'Bearer wrong-token-0123' },
    { authorization: TOKEN },
    { authorization: `Basic ${TOKEN}` },
  ] as Record<string, string>[]) {
    const r = await post('/v1/search', query, headers);
    assert.equal(r.statusCode, 401, JSON.stringify(headers));
    assert.equal(r.headers['www-authenticate'], 'Bearer');
    assert.match(r.json().error, /bearer token/);
  }
  assert.equal((await server.inject({ method: 'GET', url: '/v1/items/image:0' })).statusCode, 401);
  assert.equal((await post('/v1/search', query)).statusCode, 200);
  assert.equal(bearerMatches(`Bearer ${TOKEN}`, TOKEN), true);
  assert.equal(bearerMatches(`Bearer ${TOKEN}x`, TOKEN), false);
  assert.equal(bearerMatches(undefined, TOKEN), false);
});

test('POST /v1/search answers what the library answers, as URLs instead of file paths, in batches and pages', async () => {
  await setUp();
  const expected = (await index.search([{ text: 'a green stripe' }], { k: 4, modality: 'image' }))[0]!;
  const r = await post('/v1/search', { query: { text: 'a green stripe' }, k: 4, modality: 'image' });
  assert.equal(r.statusCode, 200, r.body);
  const hits = r.json().results[0].hits as (Omit<SearchHit, 'media'> & { mediaUrl: string })[];
  assert.deepEqual(
    hits.map((h) => [h.rank, h.id, h.mediaUrl]),
    expected.map((h) => [h.rank, h.id, `/v1/items/${encodeURIComponent(h.id)}/media`]),
  );
  hits.forEach((h, i) => assert.ok(Math.abs(h.score - expected[i]!.score) < 1e-6));
  assert.equal('media' in hits[0]!, false);

  const batch = await post('/v1/search', {
    queries: [{ text: 'a green stripe' }, { image: png('blue-dot.png') }],
    k: 4,
    modality: 'image',
  });
  assert.equal(batch.statusCode, 200, batch.body);
  const [first, second] = batch.json().results as { hits: { id: string; score: number; mediaUrl: string }[] }[];
  assert.deepEqual(
    first!.hits.map((h) => h.id),
    expected.map((h) => h.id),
  );
  // An indexed image finds itself first, at cosine 1.
  assert.equal(second!.hits[0]!.mediaUrl, `/v1/items/${encodeURIComponent('image:10')}/media`);
  assert.ok(Math.abs(second!.hits[0]!.score - 1) < 1e-5);

  const page = await post('/v1/search', { query: { text: 'a green stripe' }, k: 2, offset: 2, modality: 'image' });
  assert.deepEqual(
    page.json().results[0].hits.map((h: { rank: number; id: string }) => [h.rank, h.id]),
    expected.slice(2, 4).map((h) => [h.rank, h.id]),
  );
  const filtered = await post('/v1/search', { query: { text: 'a green stripe' }, k: 10, filter: { item: { in: ['4', '5'] } } });
  assert.deepEqual([...new Set(filtered.json().results[0].hits.map((h: { item: string }) => h.item))].sort(), ['4', '5']);
});

/**
 * An index that answers each text query with one hit named by its text and embeds a text as
 * [its first character's code, its length], and fails on the text 'bad'; it records each
 * searchRows and embed call.
 */
function fakeIndex(): {
  index: Pick<SearchIndex, 'searchRows' | 'embed'>;
  calls: SearchRequest[][];
  embedCalls: SearchQuery[][];
} {
  const calls: SearchRequest[][] = [];
  const embedCalls: SearchQuery[][] = [];
  const embed = async (queries: readonly SearchQuery[]): Promise<Float32Array[]> => {
    embedCalls.push([...queries]);
    const texts = queries.map((q) => (q as { text: string }).text);
    if (texts.includes('bad')) throw new IndexQueryError('query 0: bad');
    return texts.map((text) => Float32Array.of(text.charCodeAt(0), text.length));
  };
  const searchRows = async (requests: readonly SearchRequest[]): Promise<RowHit[][][]> => {
    calls.push([...requests]);
    const texts = requests.map((r) => r.queries.map((q) => (q as { text: string }).text));
    if (texts.flat().includes('bad')) throw new IndexQueryError('query 0: bad');
    return texts.map((t) =>
      t.map((text) => [{ rank: 1, score: 1, row: { id: text, item: text, modality: 'text', text, media: null, metadata: '{}' } }]),
    );
  };
  return { index: { searchRows, embed }, calls, embedCalls };
}
const texts = (...t: string[]): SearchQuery[] => t.map((text) => ({ text }));
const hitIds = (results: RowHit[][]): string[][] => results.map((hits) => hits.map((h) => h.row.id));

test('QueryBatcher runs the searches that arrive within maxWaitMs as one searchRows, each getting its own hits', async () => {
  const { index, calls } = fakeIndex();
  const batcher = new QueryBatcher(index, { maxWaitMs: 30, maxQueries: 100 });
  const started = performance.now();
  const answers = await Promise.all([
    batcher.search(texts('a')),
    batcher.search(texts('b', 'c'), { k: 3 }),
    batcher.search(texts('d'), { modality: 'image' }),
  ]);
  assert.ok(performance.now() - started >= 29, 'the batch waited for maxWaitMs');
  assert.deepEqual(answers.map(hitIds), [[['a']], [['b'], ['c']], [['d']]]);
  assert.equal(calls.length, 1);
  assert.deepEqual(calls[0]!, [
    { queries: texts('a'), options: {} },
    { queries: texts('b', 'c'), options: { k: 3 } },
    { queries: texts('d'), options: { modality: 'image' } },
  ]);
  // A later search starts a batch of its own.
  assert.deepEqual(hitIds(await batcher.search(texts('e'))), [['e']]);
  assert.equal(calls.length, 2);
});

test('QueryBatcher runs a batch as soon as maxQueries wait; a filtered search goes to the index at once', async () => {
  const { index, calls } = fakeIndex();
  const batcher = new QueryBatcher(index, { maxWaitMs: 60_000, maxQueries: 3 });
  const late = new Promise<string>((resolve) => setTimeout(() => resolve('waited'), 5_000).unref());
  const first = batcher.search(texts('a', 'b'));
  const second = batcher.search(texts('c'));
  assert.deepEqual(await Promise.race([Promise.all([first, second]).then((r) => r.map(hitIds)), late]), [[['a'], ['b']], [['c']]]);
  assert.equal(calls.length, 1);
  const filtered = batcher.search(texts('f'), { where: { item: 'f' } });
  assert.deepEqual(await Promise.race([filtered.then(hitIds), late]), [['f']]);
  assert.deepEqual(calls[1], [{ queries: texts('f'), options: { where: { item: 'f' } } }]);
  assert.throws(() => new QueryBatcher(index, { maxQueries: 0 }), /maxQueries must be an integer ≥ 1/);
});

test('QueryBatcher: requests that arrive while a batch runs wait for it, then run together', async () => {
  const { index, calls } = fakeIndex();
  let release = (): void => {};
  const held = new Promise<void>((resolve) => (release = resolve));
  const searchRows = index.searchRows;
  // The first batch holds until released; `started` counts the batches begun.
  let started = 0;
  const slow = {
    ...index,
    searchRows: async (r: readonly SearchRequest[]) => (started++ === 0 ? (await held, searchRows(r)) : searchRows(r)),
  };
  const batcher = new QueryBatcher(slow, { maxWaitMs: 5, maxQueries: 3 });
  const first = batcher.search(texts('a'));
  await new Promise((resolve) => setTimeout(resolve, 30)); // the first batch has started and holds
  const later = [batcher.search(texts('b')), batcher.search(texts('c')), batcher.search(texts('d', 'e'))];
  await new Promise((resolve) => setTimeout(resolve, 30));
  assert.equal(started, 1, 'no second batch while the first runs');
  release();
  assert.deepEqual(hitIds(await first), [['a']]);
  assert.deepEqual((await Promise.all(later)).map(hitIds), [[['b']], [['c']], [['d'], ['e']]]);
  // After it: b and c together (3 queries at most: d and e make a batch of their own).
  assert.deepEqual(
    calls.map((call) => call.map((r) => r.queries.map((q) => (q as { text: string }).text).join('+'))),
    [['a'], ['b', 'c'], ['d+e']],
  );
});

test('QueryBatcher: a bad query fails only its own search; the others of its batch are answered', async () => {
  const { index, calls } = fakeIndex();
  const batcher = new QueryBatcher(index, { maxWaitMs: 60_000, maxQueries: 4 });
  const [a, bad, c] = await Promise.allSettled([batcher.search(texts('a')), batcher.search(texts('x', 'bad')), batcher.search(texts('c'))]);
  assert.deepEqual(a.status === 'fulfilled' && hitIds(a.value), [['a']]);
  assert.deepEqual(c.status === 'fulfilled' && hitIds(c.value), [['c']]);
  assert.ok(bad.status === 'rejected' && bad.reason instanceof IndexQueryError, String(bad.status));
  // The batch of three failed, then each ran alone.
  assert.deepEqual(
    calls.map((call) => call.length),
    [3, 1, 1, 1],
  );
});

test('QueryBatcher embeds the inputs of concurrent callers in one pass, each getting its own rows; a bad input fails only its caller', async () => {
  const { index, embedCalls } = fakeIndex();
  const batcher = new QueryBatcher(index, { maxWaitMs: 30, maxQueries: 100 });
  const rows = (vectors: Float32Array[]): number[][] => vectors.map((v) => Array.from(v));
  const answers = await Promise.all([batcher.embed(texts('a')), batcher.embed(texts('bb', 'ccc')), batcher.embed(texts('d'))]);
  assert.deepEqual(answers.map(rows), [
    [[97, 1]],
    [
      [98, 2],
      [99, 3],
    ],
    [[100, 1]],
  ]);
  assert.deepEqual(embedCalls, [texts('a', 'bb', 'ccc', 'd')]);
  embedCalls.length = 0;
  const [a, bad] = await Promise.allSettled([batcher.embed(texts('a')), batcher.embed(texts('x', 'bad'))]);
  assert.deepEqual(a.status === 'fulfilled' && rows(a.value), [[97, 1]]);
  assert.ok(bad.status === 'rejected' && bad.reason instanceof IndexQueryError, String(bad.status));
  // The batch of two failed, then each ran alone.
  assert.deepEqual(embedCalls, [texts('a', 'x', 'bad'), texts('a'), texts('x', 'bad')]);
});

test('POST /v1/search: concurrent requests are searched as one batch and answered as each is alone; a bad image gets its 400', async () => {
  await setUp();
  const dim = index.provenance.dim;
  const bodies: Record<string, unknown>[] = [
    { query: { text: 'a red square' } },
    { query: { text: 'a blue dot' }, k: 3, modality: 'image' },
    { queries: [{ text: 'a green stripe' }, { image: png('yellow-frame.png') }], k: 5, offset: 2, modality: 'text' },
    { query: { image: png('purple-dot.png') }, k: 4, modality: 'image' },
    { query: { embedding: Array.from({ length: dim }, (_, i) => Math.sin(i + 1)) }, k: 6 },
    { query: { image: png('red-square.png').slice(0, 120) } }, // a truncated file: decoding fails
    { queries: [{ text: 'dot in orange' }, { text: 'a yellow square' }, { text: 'frame in blue' }], k: 2 },
    { query: { text: 'an orange frame' }, k: 6, filter: { item: { in: ['1', '2', '3'] } } }, // a flat scan: not batched
  ];
  // Alone, each request is a batch of its own.
  type Answer = Awaited<ReturnType<typeof post>>;
  const alone: Answer[] = [];
  for (const body of bodies) alone.push(await post('/v1/search', body));
  type Results = { results: { hits: { rank: number; id: string; score: number }[] }[] };

  const searchRows = index.searchRows.bind(index);
  /** The answers to `which` of the bodies sent at once, and the sizes of the searchRows calls they made. */
  async function together(which: number[]): Promise<{ answers: Answer[]; batchSizes: number[] }> {
    const queries = which
      .filter((i) => bodies[i]!.filter === undefined)
      .reduce((n, i) => n + ((bodies[i]!.queries as unknown[]) ?? [1]).length, 0);
    // The batch runs when the last query arrives (maxQueries), never on the timer.
    const batched = buildServer({ index, batching: { maxWaitMs: 60_000, maxQueries: queries } });
    const batchSizes: number[] = [];
    index.searchRows = (requests) => (batchSizes.push(requests.length), searchRows(requests));
    try {
      const answers = await Promise.all(which.map((i) => batched.inject({ method: 'POST', url: '/v1/search', payload: bodies[i]! })));
      return { answers, batchSizes };
    } finally {
      delete (index as Partial<SearchIndex>).searchRows;
      await batched.close();
    }
  }
  function assertAsAlone(answers: Answer[], which: number[]): void {
    answers.forEach((r, n) => {
      const i = which[n]!;
      assert.equal(r.statusCode, alone[i]!.statusCode, `${i}: ${r.body}`);
      if (r.statusCode !== 200) return assert.deepEqual(r.json(), alone[i]!.json());
      const [got, expected] = [r.json() as Results, alone[i]!.json() as Results];
      assert.equal(got.results.length, expected.results.length);
      got.results.forEach((q, j) => assertSameHits(q.hits, expected.results[j]!.hits, `request ${i}, query ${j}`));
    });
  }

  // The good requests: the unfiltered ones in one searchRows (the filtered one alone), every answer as alone.
  const good = [0, 1, 2, 3, 4, 6, 7];
  const ok = await together(good);
  assert.deepEqual(ok.batchSizes.sort(), [1, 6]);
  assertAsAlone(ok.answers, good);
  assert.ok(ok.answers.every((r) => r.statusCode === 200));

  // With the bad image among them: its 400, and the others' answers.
  const all = bodies.map((_, i) => i);
  const withBad = await together(all);
  assert.ok(withBad.batchSizes.includes(7), `batch sizes ${withBad.batchSizes.join(', ')}`);
  assertAsAlone(withBad.answers, all);
  assert.equal(withBad.answers[5]!.statusCode, 400);
  assert.match(withBad.answers[5]!.json().error, /uploaded image/);
  assert.equal(withBad.answers.filter((r) => r.statusCode === 200).length, bodies.length - 1);
});

test('POST /v1/embed returns unit embeddings of the index width that find the indexed rows', async () => {
  await setUp();
  const r = await post('/v1/embed', { inputs: [{ image: png('red-square.png') }, { text: 'a red square' }] });
  assert.equal(r.statusCode, 200, r.body);
  const body = r.json() as { space: string; dim: number; embeddings: number[][] };
  assert.equal(body.space, index.provenance.space);
  assert.equal(body.dim, index.provenance.dim);
  assert.equal(body.embeddings.length, 2);
  for (const e of body.embeddings) {
    assert.equal(e.length, body.dim);
    assert.ok(Math.abs(Math.hypot(...e) - 1) < 1e-5);
  }
  const [hit] = (await index.search([{ embedding: body.embeddings[0]! }], { k: 1 }))[0]!;
  assert.equal(hit!.id, 'image:0');
  assert.ok(Math.abs(hit!.score - 1) < 1e-5);
});

test('POST /v1/search takes image files as a multipart form, the options as text fields, and answers as for base64 in JSON', async () => {
  await setUp();
  const json = await post('/v1/search', {
    queries: [{ image: png('blue-dot.png') }, { image: png('green-stripe.png') }],
    k: 3,
    modality: 'text',
    filter: { item: { in: ['1', '2', '3', '10', '11'] } },
  });
  assert.equal(json.statusCode, 200, json.body);
  const form = await postForm('/v1/search', [
    ['k', '3'],
    ['modality', 'text'],
    ['filter', JSON.stringify({ item: { in: ['1', '2', '3', '10', '11'] } })],
    ['image', pngFile('blue-dot.png'), 'blue-dot.png'],
    ['image', pngFile('green-stripe.png'), 'green-stripe.png'],
  ]);
  assert.equal(form.statusCode, 200, form.body);
  assert.deepEqual(form.json(), json.json());
  const results = form.json().results as { hits: { id: string; item: string; modality: string }[] }[];
  assert.equal(results.length, 2);
  for (const { hits } of results) {
    assert.equal(hits.length, 3);
    for (const h of hits) {
      assert.equal(h.modality, 'text');
      assert.ok(['1', '2', '3', '10', '11'].includes(h.item), h.item);
    }
  }
  // One file, the options left out: one result list of the default size, the image itself first.
  const one = await postForm('/v1/search', [['image', pngFile('blue-dot.png'), 'blue-dot.png']]);
  assert.equal(one.statusCode, 200, one.body);
  const [only] = one.json().results as { hits: { id: string; score: number }[] }[];
  assert.equal(only!.hits.length, 10);
  assert.equal(only!.hits[0]!.id, 'image:10');
  assert.ok(Math.abs(only!.hits[0]!.score - 1) < 1e-5);
  // The form is read after the token is checked.
  const denied = await postForm('/v1/search', [['image', pngFile('blue-dot.png'), 'blue-dot.png']], {});
  assert.equal(denied.statusCode, 401);
});

test('POST /v1/embed takes image files as a multipart form and answers as for base64 in JSON', async () => {
  await setUp();
  const json = await post('/v1/embed', { inputs: [{ image: png('red-square.png') }, { image: png('blue-dot.png') }] });
  assert.equal(json.statusCode, 200, json.body);
  const form = await postForm('/v1/embed', [
    ['image', pngFile('red-square.png'), 'red-square.png'],
    ['image', pngFile('blue-dot.png'), 'blue-dot.png'],
  ]);
  assert.equal(form.statusCode, 200, form.body);
  assert.deepEqual(form.json(), json.json());
  assert.equal(form.json().embeddings.length, 2);
  assert.equal(form.json().embeddings[0].length, index.provenance.dim);
});

test('a bad multipart form gets a 4xx naming the problem, and the server keeps serving', async () => {
  await setUp();
  const red = readFileSync(join(fixture.images, 'red-square.png'));
  const image = (blob: Blob): [string, Blob, string] => ['image', blob, 'upload.png'];
  const cases: [Parameters<typeof multipart>[0], number, RegExp][] = [
    [[image(file(Buffer.from('not an image at all'), 'text/plain'))], 400, /not a PNG, JPEG, WebP or GIF/],
    [[image(file(red.subarray(0, 90)))], 400, /uploaded image/], // the bytes the JSON test's 120 base64 characters hold
    [[image(file(pngClaiming(100000, 100000)))], 400, /uploaded image.*(too large|pixels)/],
    [[image(file(new Uint8Array(0)))], 400, /not a PNG, JPEG, WebP or GIF/],
    [[['image', 'aGVsbG8=']], 400, /image\/0 must be an uploaded file/],
    [[['k', '3']], 400, /must have required property 'image'/],
    [[image(pngFile('red-square.png')), ['colour', 'red']], 400, /must NOT have additional properties/],
    [[image(pngFile('red-square.png')), ['k', 'three']], 400, /k must be integer/],
    [[image(pngFile('red-square.png')), ['k', '0']], 400, /k must be >= 1/],
    [[image(pngFile('red-square.png')), ['k', '2'], ['k', '3']], 400, /k must be integer/],
    [[image(pngFile('red-square.png')), ['modality', 'audio']], 400, /must be equal to one of the allowed values/],
    [[image(pngFile('red-square.png')), ['filter', '{"item": ']], 400, /filter must be object/],
    [[image(pngFile('red-square.png')), ['filter', '{"item = \'1\' OR 1=1 --": "x"}']], 400, /unknown column/],
    [[image(pngFile('red-square.png')), ['filter', 'x'.repeat(300 * 1024)]], 413, /form field 'filter' is longer than 262144 bytes/],
    [Array.from({ length: 65 }, () => image(pngFile('red-square.png'))), 413, /a form holds at most 64 files/],
  ];
  for (const [fields, status, message] of cases) {
    const label = fields
      .map(([name, value]) => `${name}=${typeof value === 'string' ? value.slice(0, 40) : `<${value.size} bytes>`}`)
      .join('&');
    const r = await postForm('/v1/search', fields);
    assert.equal(r.statusCode, status, `${label}: ${r.body}`);
    assert.match(r.json().error, message, label);
  }
  const embedText = await postForm('/v1/embed', [image(pngFile('red-square.png')), ['text', 'a red square']]);
  assert.equal(embedText.statusCode, 400);
  assert.match(embedText.json().error, /must NOT have additional properties/);

  // Malformed bodies: no boundary, a body cut short, a boundary that never appears.
  const { payload, type } = await multipart([image(pngFile('red-square.png')), ['k', '3']]);
  const malformed: [string, Buffer][] = [
    ['multipart/form-data', payload],
    [type, payload.subarray(0, payload.length - 60)],
    ['multipart/form-data; boundary=elsewhere', payload],
  ];
  for (const [contentType, body] of malformed) {
    const r = await server.inject({ method: 'POST', url: '/v1/search', payload: body, headers: { ...auth, 'content-type': contentType } });
    assert.ok(r.statusCode === 400, `${contentType} (${body.length} bytes): ${r.statusCode} ${r.body}`);
    assert.match(r.json().error, /malformed multipart body|must have required property 'image'/, contentType);
  }

  // The body limit bounds a form as it bounds JSON: by the length the request declares, or, for a
  // chunked body (which declares none), by each file and by the files together.
  const limit = 4096;
  const small = buildServer({ index, bodyLimit: limit });
  const chunked = async (fields: Parameters<typeof multipart>[0]) => {
    const { payload, type } = await multipart(fields);
    return small.inject({ method: 'POST', url: '/v1/search', payload: Readable.from([payload]), headers: { 'content-type': type } });
  };
  try {
    const declared = await postForm('/v1/search', [image(file(Buffer.alloc(limit)))], {}, small);
    assert.equal(declared.statusCode, 413, declared.body);
    assert.equal(declared.json().error, `the request body is larger than the body limit (${limit} bytes)`);
    const one = await chunked([image(file(Buffer.alloc(limit + 1)))]);
    assert.equal(one.statusCode, 413, one.body);
    assert.equal(one.json().error, `an uploaded file is larger than the body limit (${limit} bytes)`);
    const together = await chunked([image(file(Buffer.alloc(limit / 2 + 1))), image(file(Buffer.alloc(limit / 2)))]);
    assert.equal(together.statusCode, 413, together.body);
    assert.equal(together.json().error, `the uploaded files are larger than the body limit (${limit} bytes) together`);
    const fits = await chunked([image(file(red)), image(file(red))]);
    assert.equal(fits.statusCode, 200, fits.body);
    assert.equal(fits.json().results.length, 2);
  } finally {
    await small.close();
  }
  assert.equal((await server.inject({ method: 'GET', url: '/healthz' })).statusCode, 200);
});

test('GET /docs/json is the OpenAPI document of the API, made from the route schemas, and /docs shows it; neither needs the token', async () => {
  await setUp();
  const r = await server.inject({ method: 'GET', url: '/docs/json' });
  assert.equal(r.statusCode, 200, r.body);
  const doc = r.json() as {
    openapi: string;
    paths: Record<
      string,
      Record<string, { security?: unknown; requestBody?: { content: Record<string, { schema: Record<string, unknown> }> } }>
    >;
    components: { securitySchemes: Record<string, unknown> };
  };
  assert.equal(doc.openapi, '3.0.3');
  // The API's routes, with Fastify's `:id` as OpenAPI's `{id}`; the page, its script and the docs themselves are left out.
  assert.deepEqual(Object.keys(doc.paths).sort(), [
    '/healthz',
    '/metrics',
    '/v1/embed',
    '/v1/items/{id}',
    '/v1/items/{id}/media',
    '/v1/search',
  ]);
  const search = doc.paths['/v1/search']!.post!;
  assert.deepEqual(Object.keys(search.requestBody!.content).sort(), ['application/json', 'multipart/form-data']);
  const json = search.requestBody!.content['application/json']!.schema as { properties: Record<string, Record<string, unknown>> };
  assert.deepEqual(json.properties.k, { type: 'integer', minimum: 1, maximum: 1000 });
  assert.deepEqual(Object.keys(json.properties).sort(), ['filter', 'k', 'modality', 'offset', 'queries', 'query']);
  const form = search.requestBody!.content['multipart/form-data']!.schema as {
    required: string[];
    properties: Record<string, Record<string, unknown>>;
  };
  assert.deepEqual(form.required, ['image']);
  assert.deepEqual(form.properties.image!.items, { type: 'string', format: 'binary' });
  assert.equal(form.properties.image!.maxItems, 64);
  assert.deepEqual(doc.paths['/v1/embed']!.post!.requestBody!.content['multipart/form-data']!.schema.required, ['image']);
  // The token is declared where the server asks for it: on /v1/ routes only.
  assert.deepEqual(doc.components.securitySchemes, { bearerToken: { type: 'http', scheme: 'bearer' } });
  assert.deepEqual(search.security, [{ bearerToken: [] }]);
  assert.deepEqual(doc.paths['/v1/items/{id}']!.get!.security, [{ bearerToken: [] }]);
  assert.equal(doc.paths['/healthz']!.get!.security, undefined);

  const page = await server.inject({ method: 'GET', url: '/docs' });
  assert.equal(page.statusCode, 200);
  assert.match(page.headers['content-type'] as string, /^text\/html/);
  assert.match(page.headers['content-security-policy'] as string, /default-src 'none'/);
  for (const operation of [
    'POST /v1/search',
    'POST /v1/embed',
    'GET /v1/items/{id}',
    'GET /v1/items/{id}/media',
    'GET /healthz',
    'GET /metrics',
  ])
    assert.ok(page.body.includes(`<code>${operation}</code>`), operation);
  assert.match(page.body, /Body: <code>multipart\/form-data<\/code>/);
  assert.match(page.body, /a multipart form holds image files in <code>image<\/code> fields/);
  assert.match(page.body, /&quot;format&quot;: &quot;binary&quot;/); // schemas are shown as escaped text
  assert.doesNotMatch(page.body, /<script/i);

  // Without a token the document declares none.
  const open = buildServer({ index });
  try {
    const openDoc = (await open.inject({ method: 'GET', url: '/docs/json' })).json();
    assert.equal(openDoc.components?.securitySchemes, undefined);
    assert.equal(openDoc.paths['/v1/search'].post.security, undefined);
  } finally {
    await open.close();
  }
});

test("the page's script is the bundle the build made from src/serve/page/app.ts, and the package ships it", async () => {
  await setUp();
  const bundle = readFileSync(join('dist', 'src', 'serve', 'page', 'app.js'), 'utf8');
  const served = await server.inject({ method: 'GET', url: '/app.js' });
  assert.equal(served.statusCode, 200);
  assert.match(served.headers['content-type'] as string, /^text\/javascript/);
  assert.equal(served.body, bundle);
  assert.match(bundle, /\/\/ src\/serve\/page\/app\.ts/); // esbuild's note of its source
  assert.doesNotMatch(bundle, /^\s*(import|export)\s/m); // one classic script, nothing left to load
  const pack = spawnSync('npm', ['pack', '--dry-run', '--ignore-scripts', '--json'], { encoding: 'utf8' });
  assert.equal(pack.status, 0, pack.stderr);
  const files = (JSON.parse(pack.stdout) as { files: { path: string }[] }[])[0]!.files.map((f) => f.path);
  assert.ok(files.includes('dist/src/serve/page/app.js'));
  assert.ok(!files.some((f) => f.startsWith('src/')));
});

test('GET /v1/items/:id and its media serve only what the index holds', async () => {
  await setUp();
  const item = await server.inject({ method: 'GET', url: '/v1/items/text:2:1', headers: auth });
  assert.equal(item.statusCode, 200);
  assert.deepEqual(item.json(), {
    id: 'text:2:1',
    item: '2',
    modality: 'text',
    text: 'dot in red',
    mediaUrl: null,
    metadata: { annotationIds: [4, 5] },
  });
  const media = await server.inject({ method: 'GET', url: '/v1/items/image%3A10/media', headers: auth });
  assert.equal(media.statusCode, 200);
  assert.equal(media.headers['content-type'], 'image/png');
  assert.deepEqual(media.rawPayload, readFileSync(join(fixture.images, 'blue-dot.png')));
  assert.equal((await server.inject({ method: 'GET', url: '/v1/items/text:2:1/media', headers: auth })).statusCode, 404);
  for (const id of [
    '..%2F..%2F..%2Fetc%2Fpasswd',
    encodeURIComponent(join(fixture.images, 'blue-dot.png')),
    '%2Fetc%2Fpasswd',
    'image%3A10%2F..%2F..%2Fcaptions.json',
    encodeURIComponent("image:10' OR '1'='1"),
    'blue-dot.png',
  ]) {
    const r = await server.inject({ method: 'GET', url: `/v1/items/${id}/media`, headers: auth });
    assert.equal(r.statusCode, 404, id);
    assert.match(r.json().error, /no item/);
  }
  const long = await server.inject({ method: 'GET', url: `/v1/items/${'x'.repeat(2000)}`, headers: auth });
  assert.equal(long.statusCode, 414);
});

test('bad requests get a 4xx naming the problem', async () => {
  await setUp();
  const dim = index.provenance.dim;
  const cases: [unknown, RegExp][] = [
    [{ query: { embedding: [1, 2, 3] } }, new RegExp(`expected ${dim} numbers`)],
    [{ query: { embedding: new Array(dim).fill(0) } }, /zero vector/],
    [{ query: { text: 'a', image: png('red-square.png') } }, /must NOT have more than 1 properties/],
    [{ query: { text: 'a' }, colour: 'red' }, /must NOT have additional properties/],
    [{ query: { txt: 'a' } }, /must NOT have additional properties/],
    [{ query: { text: 'a' }, k: 0 }, /k must be >= 1/],
    [{ query: { text: 'a' }, k: '5' }, /k must be integer/],
    [{ query: { text: 'a' }, modality: 'audio' }, /must be equal to one of the allowed values/],
    [{ queries: [] }, /must NOT have fewer than 1 items/],
    [{}, /exactly one of "query" \(one query\) or "queries"/],
    [{ query: { text: 'a' }, queries: [{ text: 'b' }] }, /exactly one of "query"/],
    [{ query: { vector: [1, 2] } }, /the model has no vector modality/],
    [{ query: { image: 'bm90IGFuIGltYWdl' } }, /not a PNG, JPEG, WebP or GIF/],
    [{ query: { image: 'not base64!' } }, /must match pattern/],
    [{ query: { image: png('red-square.png').slice(0, 120) } }, /uploaded image/],
    [{ query: { image: pngClaiming(100000, 100000).toString('base64') } }, /uploaded image.*(too large|pixels)/],
    [{ query: { text: 'a' }, filter: { "item = '1' OR 1=1 --": 'x' } }, /unknown column/],
    [{ query: { text: 'a' }, filter: { item: 3 } }, /holds strings/],
    [{ query: { text: 'a' }, filter: { item: { like: '%' } } }, /unknown operator 'like'/],
  ];
  for (const [payload, message] of cases) {
    const r = await post('/v1/search', payload);
    assert.equal(r.statusCode, 400, `${JSON.stringify(payload).slice(0, 200)}: ${r.body}`);
    assert.match(r.json().error, message, JSON.stringify(payload).slice(0, 200));
  }
  // An injected quote is a value like any other: it matches no item.
  const injected = await post('/v1/search', { query: { text: 'a' }, filter: { item: "0' OR '1'='1" } });
  assert.equal(injected.statusCode, 200);
  assert.deepEqual(injected.json().results[0].hits, []);
  const nan = await server.inject({
    method: 'POST',
    url: '/v1/search',
    headers: { ...auth, 'content-type': 'application/json' },
    payload: '{"query":{"embedding":[NaN]}}',
  });
  assert.equal(nan.statusCode, 400);
  for (const url of ['/v1/search', '/v1/embed']) {
    const empty = await server.inject({ method: 'POST', url, headers: auth });
    assert.equal(empty.statusCode, 400, `${url}: ${empty.body}`);
    assert.match(empty.json().error, /body must be a JSON object or a multipart form/);
  }
  // Bodies are JSON or multipart forms; any other type is refused before it is read.
  const text = await server.inject({
    method: 'POST',
    url: '/v1/search',
    headers: { ...auth, 'content-type': 'text/plain' },
    payload: 'a red square',
  });
  assert.equal(text.statusCode, 415);
  assert.match(text.json().error, /Unsupported Media Type/);
  const small = buildServer({ index, bodyLimit: 1024 });
  const big = await small.inject({ method: 'POST', url: '/v1/search', payload: { query: { text: 'x'.repeat(2000) } } });
  assert.equal(big.statusCode, 413);
  assert.match(big.json().error, /too large/i);
  await small.close();
});

test('GET /metrics counts requests by route pattern and status, with a latency histogram', async () => {
  await setUp();
  const own = buildServer({ index });
  try {
    await own.inject({ method: 'POST', url: '/v1/search', payload: { query: { text: 'a red dot' } } });
    await own.inject({ method: 'POST', url: '/v1/search', payload: { query: { text: 'a red dot' } } });
    await own.inject({ method: 'POST', url: '/v1/search', payload: { k: 3 } });
    await own.inject({ method: 'GET', url: '/v1/items/no-such-item' });
    const text = (await own.inject({ method: 'GET', url: '/metrics' })).body;
    assert.match(text, /^byol_align_requests_total\{route="\/v1\/search",status="200"\} 2$/m);
    assert.match(text, /^byol_align_request_errors_total\{route="\/v1\/search",status="400"\} 1$/m);
    assert.match(text, /^byol_align_requests_total\{route="\/v1\/items\/:id",status="404"\} 1$/m);
    assert.match(text, /^byol_align_request_duration_seconds_count\{route="\/v1\/search"\} 3$/m);
    assert.match(text, /^byol_align_request_duration_seconds_bucket\{route="\/v1\/search",le="\+Inf"\} 3$/m);
    assert.doesNotMatch(text, /no-such-item/); // the pattern, never the URL a client chose
  } finally {
    await own.close();
  }
});

test('hundreds of random and malformed bodies get 4xx answers and the server keeps answering /healthz', async () => {
  await setUp();
  let seed = 7;
  const random = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const pieces = [
    '{',
    '}',
    '[',
    ']',
    '"query"',
    '"queries"',
    '"text"',
    '"image"',
    '"embedding"',
    '"k"',
    ':',
    ',',
    '1e999',
    '-1',
    'null',
    'true',
    '"\\u0000"',
    '"a"',
    'NaN',
    '"filter"',
    '{"item":{"in":[]}}',
  ];
  const statuses = new Set<number>();
  for (let i = 0; i < 300; i++) {
    const payload = Array.from({ length: 1 + Math.floor(random() * 12) }, () => pieces[Math.floor(random() * pieces.length)]).join('');
    const r = await server.inject({
      method: 'POST',
      url: i % 2 ? '/v1/search' : '/v1/embed',
      headers: { ...auth, 'content-type': 'application/json' },
      payload,
    });
    assert.ok(r.statusCode >= 400 && r.statusCode < 500, `${payload}: ${r.statusCode} ${r.body}`);
    statuses.add(r.statusCode);
  }
  assert.ok(statuses.has(400));
  // Multipart forms cut short or with bytes overwritten anywhere: a 4xx, or an answer when the
  // change left a valid form (a digit of k, a pixel), never a 5xx.
  const { payload, type } = await multipart([
    ['k', '5'],
    ['filter', '{"item":{"in":["1","2"]}}'],
    ['image', pngFile('red-square.png'), 'red-square.png'],
    ['image', pngFile('blue-dot.png'), 'blue-dot.png'],
  ]);
  const formStatuses = new Set<number>();
  for (let i = 0; i < 200; i++) {
    const body = Buffer.from(payload);
    const at = Math.floor(random() * body.length);
    if (i % 2 === 0) body.fill(Math.floor(random() * 256), at, Math.min(body.length, at + 1 + Math.floor(random() * 8)));
    const mutated = i % 2 ? body.subarray(0, at) : body;
    const r = await server.inject({ method: 'POST', url: '/v1/search', headers: { ...auth, 'content-type': type }, payload: mutated });
    assert.ok(r.statusCode < 500, `${i % 2 ? 'cut' : 'overwritten'} at ${at}: ${r.statusCode} ${r.body}`);
    formStatuses.add(r.statusCode);
  }
  assert.ok(formStatuses.has(400));
  assert.equal((await server.inject({ method: 'GET', url: '/healthz' })).statusCode, 200);
});

test('byol-align serve listens on loopback, answers, and stops on SIGTERM with 143', async () => {
  await setUp();
  const child = spawn(process.execPath, [CLI, 'serve', '--db', db, '--port', '0', '--threads', '1'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  const exited = new Promise<number | null>((r) => child.once('exit', r));
  const address = await new Promise<string>((resolve, reject) => {
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(stderr);
      if (m) resolve(m[1]!);
    });
    child.once('exit', () => reject(new Error(`serve exited: ${stderr}`)));
  });
  const health = await fetch(`${address}/healthz`);
  assert.equal(health.status, 200);
  const r = await fetch(`${address}/v1/search`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query: { text: 'a red square' }, k: 3 }),
  });
  assert.equal(r.status, 200);
  assert.equal(((await r.json()) as { results: { hits: unknown[] }[] }).results[0]!.hits.length, 3);
  child.kill('SIGTERM');
  assert.equal(await exited, 143);
  assert.match(stderr, /SIGTERM: finishing the requests in flight, then stopping/);
  assert.doesNotMatch(stderr, /warning/);

  // Another address without a token is allowed, with a warning.
  const open = spawn(process.execPath, [CLI, 'serve', '--db', db, '--host', '0.0.0.0', '--port', '0', '--threads', '1'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let openErr = '';
  const openExited = new Promise<number | null>((r) => open.once('exit', r));
  await new Promise<void>((resolve) => {
    open.stderr.on('data', (chunk: Buffer) => {
      openErr += chunk.toString();
      if (/listening on http:/.test(openErr)) resolve(); // the ready line, not the warning before it
    });
    open.once('exit', () => resolve());
  });
  open.kill('SIGINT');
  assert.equal(await openExited, 130);
  assert.match(openErr, /warning: listening on 0\.0\.0\.0 without --token/);
});

test('the page at / searches by text and by an uploaded image, and a result searches for more like it, in Chromium', async () => {
  await setUp();
  const shots = join(tmpdir(), 'byol-align-test-output', 'serve-page');
  mkdirSync(shots, { recursive: true });
  const address = await server.listen({ host: '127.0.0.1', port: 0 });
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--headless', '--disable-gpu'] });
  try {
    const page = await browser.newPage({ viewport: { width: 1000, height: 800 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    const searchBodies: string[] = []; // the content type of each search the page sends
    page.on('request', (r) => {
      if (r.url().endsWith('/v1/search')) searchBodies.push(r.headers()['content-type'] ?? '');
    });
    await page.goto(address);
    const cardIds = (): Promise<string[]> => page.$$eval('.card', (cards) => cards.map((c) => (c as HTMLElement).dataset.id!));
    const expectIds = async (query: SearchQuery, modality: string | undefined): Promise<string[]> =>
      (await index.search([query], { k: 24, modality }))[0]!.map((h) => h.id);

    await page.fill('#token', TOKEN);
    await page.selectOption('#modality', 'image');
    await page.fill('#query', 'a blue dot');
    await page.press('#query', 'Enter');
    await page.waitForSelector('#status:has-text("24 results for \\"a blue dot\\"")');
    assert.deepEqual(await cardIds(), await expectIds({ text: 'a blue dot' }, 'image'));
    await page.waitForFunction(() =>
      [...document.querySelectorAll<HTMLImageElement>('.card img')].every((img) => img.complete && img.naturalWidth === 16),
    );
    await page.screenshot({ path: join(shots, 'text-query.png'), fullPage: true });

    await page.selectOption('#modality', 'text');
    await page.setInputFiles('#file', join(fixture.images, 'green-stripe.png'));
    await page.waitForSelector('#status:has-text("results for the image green-stripe.png")');
    assert.match(searchBodies.at(-1)!, /^multipart\/form-data; boundary=/); // the file itself, not base64 in JSON
    assert.equal(searchBodies[0], 'application/json');
    const imageQuery = { image: new Uint8Array(readFileSync(join(fixture.images, 'green-stripe.png'))) };
    const captions = await index.search([imageQuery], { k: 24, modality: 'text' });
    assert.deepEqual(
      await cardIds(),
      captions[0]!.map((h) => h.id),
    );
    assert.equal(await page.textContent('.card .caption'), captions[0]![0]!.text);
    await page.screenshot({ path: join(shots, 'image-query.png'), fullPage: true });

    // More like this: the first caption, chosen with the mouse, then the keyboard.
    const first = captions[0]![0]!.text!;
    await page.click('.card >> nth=0');
    await page.waitForSelector(`#status:has-text('results for "${first}"')`);
    assert.deepEqual(await cardIds(), await expectIds({ text: first }, 'text'));
    // Switching the modality searches the query box again, over every modality: wait for that
    // grid before taking a card from it (a card taken earlier is replaced under the keyboard).
    await page.selectOption('#modality', '');
    await page.waitForSelector('#status:has-text(\'results for "a blue dot"\')');
    await page.focus('.card >> nth=1');
    const second = await page.textContent('.card >> nth=1 >> .caption');
    await page.keyboard.press('Enter');
    await page.waitForSelector(`#status:has-text('results for "${second}"')`);
    assert.deepEqual(await cardIds(), await expectIds({ text: second! }, undefined));
    await page.screenshot({ path: join(shots, 'more-like-this.png'), fullPage: true });

    await page.fill('#token', 'wrong-token-0123');
    await page.press('#query', 'Enter');
    await page.waitForSelector('#status.error:has-text("bearer token")');
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
});

test('QueryBatcher: a batch runs as soon as the callers that the last batch answered are back, or after maxWaitMs', async () => {
  const { index, calls } = fakeIndex();
  const batcher = new QueryBatcher(index, { maxWaitMs: 400, maxQueries: 100 });
  const ids = (call: SearchRequest[]): string => call.map((r) => r.queries.map((q) => (q as { text: string }).text).join('+')).join(' ');
  // Three callers, each asking again as soon as it hears back (50 connections of a load test do so).
  const started = performance.now();
  const ends: number[] = [];
  await Promise.all(
    ['a', 'b', 'c+d'].map(async (name) => {
      for (let round = 0; round < 3; round++) {
        await batcher.search(texts(...name.split('+')));
        ends.push(performance.now() - started);
      }
    }),
  );
  // The first batch waited maxWaitMs; the next two ran once the three were back, without waiting.
  assert.deepEqual(calls.map(ids), ['a b c+d', 'a b c+d', 'a b c+d']);
  assert.ok(Math.min(...ends) >= 390, `the first batch ran after ${Math.min(...ends)} ms`);
  assert.ok(Math.max(...ends) < 390 + 300, `the next batches waited: the last answer came after ${Math.max(...ends)} ms`);
  // Two of the three back: the batch waits for the third until maxWaitMs, then runs without it.
  const before = performance.now();
  await Promise.all([batcher.search(texts('a')), batcher.search(texts('b'))]);
  assert.ok(performance.now() - before >= 390, 'a batch ran without waiting for a caller it expected');
  assert.equal(ids(calls.at(-1)!), 'a b');
});
