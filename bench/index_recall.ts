// Recall@10 of per-modality ANN tables (src/index/ann.ts) against exact search on a real index's
// embeddings, across modalities (caption queries in the image table, image queries in the caption
// table: a quantiser trained on one modality serves queries of the other), for IVF-HNSW-SQ and
// IVF-PQ at several settings, with the time per query; beside them the exact in-memory search that
// `search` and `serve` use below the threshold, one query at a time and in batches of 50, on tables
// of both sizes (its time grows with the rows; an ANN index's much more slowly), and in batches of
// 50 with its bfloat16 first pass (src/index/memory.ts).
//   node dist/bench/index_recall.js DB [TABLE] [QUERIES]
// It builds the ANN tables beside TABLE, measures, and drops them again.
import '../src/index/lance_log.js';
import * as lancedb from '@lancedb/lancedb';
import { DISTANCE } from '../src/index/table.js';
import { annModalities, annTableName, syncAnnTables } from '../src/index/ann.js';
import { EmbeddingMatrix } from '../src/index/memory.js';
import { getNumThreads } from '../src/engine/index.js';
import { machineDescription } from './measure.js';

const [db, tableName = 'items', queriesText = '200'] = process.argv.slice(2);
if (db === undefined) throw new Error('usage: node dist/bench/index_recall.js DB [TABLE] [QUERIES]');
const queriesPerDirection = Number(queriesText);
const K = 10;
const BATCH = 50;

const connection = await lancedb.connect(db);
const table = await connection.openTable(tableName);
const byModality = new Map<string, { ids: string[]; values: Float32Array[] }>();
for (const r of await table.query().select(['id', 'modality', 'embedding']).toArray()) {
  const part = byModality.get(String(r.modality)) ?? { ids: [], values: [] };
  part.ids.push(String(r.id));
  part.values.push(Float32Array.from(r.embedding as Iterable<number>));
  byModality.set(String(r.modality), part);
}
const dim = [...byModality.values()][0]!.values[0]!.length;
console.log(
  `index_recall on ${machineDescription()}, ${getNumThreads()} threads; ${db} (${tableName}): ` +
    [...byModality].map(([m, p]) => `${p.ids.length} ${m}`).join(', ') +
    `, width ${dim}`,
);
/** Vectors of width `dim` as one row-major Float32Array. */
function stacked(vectors: readonly Float32Array[]): Float32Array {
  const flat = new Float32Array(vectors.length * dim);
  vectors.forEach((v, i) => flat.set(v, i * dim));
  return flat;
}

/** Each modality's rows as one EmbeddingMatrix. */
const matricesOf = (options: { firstPass?: boolean } = {}): Map<string, EmbeddingMatrix> =>
  new Map([...byModality].map(([m, p]) => [m, EmbeddingMatrix.of(p.ids, stacked(p.values), dim, options)]));
const matrices = matricesOf();
// The same rows with a bfloat16 copy searched first (what `search` and `serve` use by default on a
// CPU with bfloat16 arithmetic), its best candidates rescored in float32.
const firstPassMatrices = matricesOf({ firstPass: true });

/** Every `step`-th row of a modality, as queries for the other. */
function sample(modality: string): Float32Array[] {
  const of = byModality.get(modality)!.values;
  const step = Math.max(1, Math.floor(of.length / queriesPerDirection));
  return of.filter((_, i) => i % step === 0).slice(0, queriesPerDirection);
}

const directions = [
  { name: 'text→image', queries: sample('text'), target: 'image' },
  { name: 'image→text', queries: sample('image'), target: 'text' },
].map((d) => {
  const m = matrices.get(d.target)!;
  const flat = stacked(d.queries);
  // The exact top 10 with the 10th score: a hit that ties the 10th is right too.
  const truth = m.top(flat, d.queries.length, K);
  return { ...d, truth: truth.map((hits) => ({ ids: new Set(hits.map((h) => h.id)), tenth: hits[K - 1]!.score })) };
});

/** Recall@10 and ms per query of `nearest` over each direction's queries. */
async function measure(label: string, nearest: (d: (typeof directions)[number]) => Promise<{ id: string; score: number }[][]>) {
  const cells: string[] = [];
  for (const d of directions) {
    const started = performance.now();
    const found = await nearest(d);
    const msPerQuery = (performance.now() - started) / d.queries.length;
    let hit = 0;
    found.forEach((hits, q) => {
      const { ids, tenth } = d.truth[q]!;
      hit += hits.filter((h) => ids.has(h.id) || h.score >= tenth - 1e-5).length;
    });
    cells.push(`${d.name} recall@${K} ${(hit / (K * d.queries.length)).toFixed(3)} ${msPerQuery.toFixed(2)} ms/query`);
  }
  console.log(`${label.padEnd(40)} ${cells.join(' | ')}`);
}

/** Each direction's queries in batches of `batch`, searched in memory in `of`. */
const inMemory = (of: Map<string, EmbeddingMatrix>, batch: number) => async (d: (typeof directions)[number]) => {
  const m = of.get(d.target)!;
  const out: { id: string; score: number }[][] = [];
  for (let i = 0; i < d.queries.length; i += batch) {
    const slice = d.queries.slice(i, i + batch);
    out.push(...m.top(stacked(slice), slice.length, K));
  }
  return out;
};
// Exact and first pass alternate, three rounds: the machine is shared, a ratio taken back to back holds.
for (const batch of [1, BATCH]) await measure(`exact in memory, batches of ${batch}`, inMemory(matrices, batch));
for (let round = 0; round < 3; round++) {
  await measure(`exact in memory, batches of ${BATCH}`, inMemory(matrices, BATCH));
  await measure(`bfloat16 first pass, batches of ${BATCH}`, inMemory(firstPassMatrices, BATCH));
}
for (const m of firstPassMatrices.values()) m.dispose();

// The exact search's cost over a million rows, twice the default ANN threshold: the same product
// and top-k (random vectors: its time does not depend on the values).
{
  const rows = 1_000_000;
  const values = new Float32Array(rows * dim);
  for (let i = 0; i < values.length; i++) values[i] = Math.random() - 0.5;
  const big = EmbeddingMatrix.of(
    Array.from({ length: rows }, (_, i) => String(i)),
    values,
    dim,
  );
  const queries = directions[0]!.queries.slice(0, BATCH * 2);
  const started = performance.now();
  for (let i = 0; i < queries.length; i += BATCH) {
    const slice = queries.slice(i, i + BATCH);
    big.top(stacked(slice), slice.length, K);
  }
  console.log(
    `exact in memory over ${rows} rows, batches of ${BATCH}: ${((performance.now() - started) / queries.length).toFixed(2)} ms/query`,
  );
  big.dispose();
}

for (const modality of await annModalities(connection, tableName)) await connection.dropTable(annTableName(tableName, modality));
let started = performance.now();
await syncAnnTables(connection, tableName, table, new Set(), 1, dim);
console.log(`ANN tables with IVF-HNSW-SQ built in ${((performance.now() - started) / 1000).toFixed(1)} s`);
const ann = new Map(
  await Promise.all(['image', 'text'].map(async (m) => [m, await connection.openTable(annTableName(tableName, m))] as const)),
);

/** Each direction's queries, one at a time, in the target's ANN table with these settings. */
const annSearch = (nprobes: number, refine: number) => async (d: (typeof directions)[number]) => {
  const out: { id: string; score: number }[][] = [];
  for (const q of d.queries) {
    const rows = await ann
      .get(d.target)!
      .vectorSearch(q)
      .distanceType(DISTANCE)
      .nprobes(nprobes)
      .refineFactor(refine)
      .select(['id', '_distance'])
      .limit(K)
      .toArray();
    out.push(rows.map((r: Record<string, unknown>) => ({ id: String(r.id), score: 1 - Number(r._distance) })));
  }
  return out;
};
const settings: [number, number][] = [
  [10, 1],
  [20, 5],
  [32, 10],
  [64, 10],
];
for (const [nprobes, refine] of settings) await measure(`IVF-HNSW-SQ nprobes ${nprobes}, refine ×${refine}`, annSearch(nprobes, refine));

started = performance.now();
for (const [modality, t] of ann) {
  const rows = byModality.get(modality)!.ids.length;
  await t.createIndex('embedding', {
    config: lancedb.Index.ivfPq({ distanceType: DISTANCE, numPartitions: Math.round(Math.sqrt(rows)), numSubVectors: dim / 8 }),
    replace: true,
  });
}
console.log(`IVF-PQ (${dim / 8} sub-vectors) built in ${((performance.now() - started) / 1000).toFixed(1)} s`);
for (const [nprobes, refine] of settings) await measure(`IVF-PQ nprobes ${nprobes}, refine ×${refine}`, annSearch(nprobes, refine));

for (const modality of await annModalities(connection, tableName)) await connection.dropTable(annTableName(tableName, modality));
connection.close();
