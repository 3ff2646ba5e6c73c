// Recall@10 of LanceDB's approximate indexes against exact search on a real index's embeddings,
// both ways across modalities (text queries for images, image queries for texts: a quantiser
// trained on the mixed table may serve one modality worse than the other), with the time per query.
//   node dist/bench/index_recall.js DB [TABLE] [QUERIES]
// It replaces the table's vector index (the rows are untouched); run it on a copy.
import '../src/index/lance_log.js';
import * as lancedb from '@lancedb/lancedb';
import { DISTANCE } from '../src/index/table.js';

const [db, tableName = 'items', queriesText = '200'] = process.argv.slice(2);
if (db === undefined) throw new Error('usage: node dist/bench/index_recall.js DB [TABLE] [QUERIES]');
const queriesPerDirection = Number(queriesText);
const K = 10;

const connection = await lancedb.connect(db);
const table = await connection.openTable(tableName);
const rows = (await table.query().select(['id', 'modality', 'embedding']).toArray()).map((r: Record<string, unknown>) => ({
  id: String(r.id),
  modality: String(r.modality),
  embedding: Float32Array.from(r.embedding as Iterable<number>),
}));
const dim = rows[0]!.embedding.length;
console.log(`${rows.length} rows of width ${dim} in ${db} (${tableName})`);

/** Every `step`-th row of a modality, as queries for the other. */
function sample(modality: string): typeof rows {
  const of = rows.filter((r) => r.modality === modality);
  const step = Math.max(1, Math.floor(of.length / queriesPerDirection));
  return of.filter((_, i) => i % step === 0).slice(0, queriesPerDirection);
}

/** Exact top-k ids by cosine (embeddings are unit vectors: the dot product). */
function exact(query: Float32Array, modality: string): string[] {
  const scored: { id: string; score: number }[] = [];
  for (const r of rows) {
    if (r.modality !== modality) continue;
    let s = 0;
    for (let i = 0; i < dim; i++) s += query[i]! * r.embedding[i]!;
    scored.push({ id: r.id, score: s });
  }
  return scored
    .sort((a, b) => b.score - a.score)
    .slice(0, K)
    .map((s) => s.id);
}

const directions = [
  { name: 'text→image', queries: sample('text'), target: 'image' },
  { name: 'image→text', queries: sample('image'), target: 'text' },
].map((d) => ({ ...d, truth: d.queries.map((q) => exact(q.embedding, d.target)) }));

async function measure(label: string, tune: (q: lancedb.VectorQuery) => lancedb.VectorQuery): Promise<void> {
  const cells: string[] = [];
  for (const d of directions) {
    let hit = 0;
    const started = performance.now();
    for (const [i, q] of d.queries.entries()) {
      const found = await tune(
        table.vectorSearch(q.embedding).distanceType(DISTANCE).where(`modality = '${d.target}'`).select(['id', '_distance']).limit(K),
      ).toArray();
      const truth = new Set(d.truth[i]);
      hit += found.filter((f: Record<string, unknown>) => truth.has(String(f.id))).length;
    }
    const msPerQuery = (performance.now() - started) / d.queries.length;
    cells.push(`${d.name} recall@${K} ${(hit / (K * d.queries.length)).toFixed(3)} ${msPerQuery.toFixed(1)} ms/query`);
  }
  console.log(`${label.padEnd(36)} ${cells.join(' | ')}`);
}

await measure('exact (flat scan)', (q) => q.bypassVectorIndex());
const partitions = Math.round(Math.sqrt(rows.length));
const candidates: [string, lancedb.Index, [number, number][]][] = [
  [
    `IVF-PQ ${partitions} partitions, ${dim / 8} sub-vectors`,
    lancedb.Index.ivfPq({ distanceType: DISTANCE, numPartitions: partitions, numSubVectors: dim / 8 }),
    [
      [20, 1],
      [20, 10],
      [32, 10],
      [64, 20],
    ],
  ],
  [
    `IVF-HNSW-SQ ${partitions} partitions`,
    lancedb.Index.hnswSq({ distanceType: DISTANCE, numPartitions: partitions }),
    [
      [20, 1],
      [32, 10],
      [64, 10],
    ],
  ],
];
for (const [name, index, settings] of candidates) {
  const started = performance.now();
  await table.createIndex('embedding', { config: index, replace: true });
  console.log(`${name}: built in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  for (const [nprobes, refine] of settings)
    await measure(`  nprobes ${nprobes}, refine ×${refine}`, (q) => q.nprobes(nprobes).refineFactor(refine));
}
connection.close();
