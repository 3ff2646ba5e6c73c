// Approximate nearest-neighbour indexes, one per modality. One LanceDB vector index over a table of
// every modality fails cross-modal queries: the modality gap puts images and captions in different
// IVF partitions, so the partitions nearest a caption hold captions and an image filter leaves
// nothing there (docs/search.md). Each modality with at least `minRows` rows therefore gets a table
// of its own (id and embedding) with its own index, kept in step with the main table by `index`
// and `--delete`; `search` and `serve` search it instead of holding that modality in memory.
import type * as lancedb from '@lancedb/lancedb';
import { Field, FixedSizeList, Float32, Schema, Utf8 } from 'apache-arrow';
import { DISTANCE, idPredicates, sqlString } from './table.js';

/**
 * Rows of one modality from which `index` builds its ANN table. Below it the exact search in
 * memory answers faster, and exactly: batched as `serve` batches, its time per query grows with the
 * rows (1.2 ms at 24,872, 3.6 ms at 87,037, 51 ms at 1,000,000) and meets the ANN table's 19–21 ms
 * near half a million (bench/index_recall.ts; docs/search.md).
 */
export const DEFAULT_ANN_MIN_ROWS = 500_000;

/**
 * IVF-HNSW-SQ: on the icon embeddings it reached recall@10 ≥ 0.95 in both directions with a
 * refine step where IVF-PQ did not (bench/RESULTS.md, issue 14).
 */
export const ANN_INDEX = 'IVF-HNSW-SQ';
/** Partitions probed per query, and the candidates re-ranked by their full vectors (× k). */
export const ANN_NPROBES = 32;
export const ANN_REFINE_FACTOR = 10;

/** The ANN table of `modality` beside the main table `table`. */
export function annTableName(table: string, modality: string): string {
  return `${table}__ann_${modality}`;
}

/** The modality of an ANN table of `table`, or undefined when `name` is not one. */
function annModality(table: string, name: string): string | undefined {
  const prefix = `${table}__ann_`;
  return name.startsWith(prefix) ? name.slice(prefix.length) : undefined;
}

/** The modalities that have an ANN table beside `table`. */
export async function annModalities(connection: lancedb.Connection, table: string): Promise<string[]> {
  return (await connection.tableNames()).map((name) => annModality(table, name)).filter((m) => m !== undefined);
}

/** The index configuration of an ANN table of `rows` rows. */
export async function annIndexConfig(rows: number): Promise<lancedb.Index> {
  const { Index } = await import('@lancedb/lancedb');
  return Index.hnswSq({ distanceType: DISTANCE, numPartitions: Math.max(1, Math.round(Math.sqrt(rows))) });
}

/** What {@link syncAnnTables} did, by modality. */
export type AnnSync = Record<string, 'built' | 'updated' | 'dropped' | 'unchanged'>;

/**
 * Brings the ANN tables of `tableName` in step with it: a modality that reached `minRows` gets its
 * table built and indexed; one that has a table gets the rows that changed (`changedIds`) upserted
 * and the rows the main table no longer holds deleted, then `optimize()` so new rows are indexed;
 * one that fell below `minRows` loses its table (its searches go back to exact).
 */
export async function syncAnnTables(
  connection: lancedb.Connection,
  tableName: string,
  table: lancedb.Table,
  changedIds: ReadonlySet<string>,
  minRows: number,
  dim: number,
): Promise<AnnSync> {
  const out: AnnSync = {};
  const existing = new Set(await annModalities(connection, tableName));
  // The main table's ids by modality, read once: the counts against the threshold, and what an ANN table may keep.
  const idsOf = new Map<string, Set<string>>();
  for (const row of await table.query().select(['id', 'modality']).toArray()) {
    const modality = String(row.modality);
    const ids = idsOf.get(modality) ?? new Set<string>();
    ids.add(String(row.id));
    idsOf.set(modality, ids);
  }
  for (const modality of new Set([...idsOf.keys(), ...existing])) {
    const name = annTableName(tableName, modality);
    const present = idsOf.get(modality) ?? new Set<string>();
    const rows = present.size;
    if (rows < minRows) {
      if (existing.has(modality)) {
        await connection.dropTable(name);
        out[modality] = 'dropped';
      }
      continue;
    }
    if (!existing.has(modality)) {
      const all = await table
        .query()
        .where(`modality = ${sqlString(modality)}`)
        .select(['id', 'embedding'])
        .toArray();
      const ann = await connection.createTable(name, all.map(annRow), { schema: annSchema(dim), mode: 'overwrite' });
      await ann.createIndex('embedding', { config: await annIndexConfig(rows) });
      out[modality] = 'built';
      continue;
    }
    const ann = await connection.openTable(name);
    const changed = await rowsOf(
      table,
      [...changedIds].filter((id) => present.has(id)),
    );
    if (changed.length > 0) await ann.mergeInsert('id').whenMatchedUpdateAll().whenNotMatchedInsertAll().execute(changed);
    const gone = (await ann.query().select(['id']).toArray())
      .map((r: Record<string, unknown>) => String(r.id))
      .filter((id) => !present.has(id));
    await deleteIds(ann, gone);
    if (changed.length + gone.length > 0) {
      await ann.optimize();
      out[modality] = 'updated';
    } else out[modality] = 'unchanged';
  }
  return out;
}

/** Removes rows by id from a table, in bounded IN lists; returns how many were there. */
export async function deleteIds(table: lancedb.Table, ids: readonly string[]): Promise<number> {
  let removed = 0;
  for (const predicate of idPredicates(ids)) {
    const before = await table.countRows(predicate);
    if (before > 0) await table.delete(predicate);
    removed += before;
  }
  return removed;
}

/** An ANN table's columns: the row's id in the main table and its embedding. */
function annSchema(dim: number): Schema {
  return new Schema([
    new Field('id', new Utf8(), false),
    new Field('embedding', new FixedSizeList(dim, new Field('item', new Float32(), true)), false),
  ]);
}

/** The id and embedding of a main-table row, as an ANN table stores it. */
function annRow(row: Record<string, unknown>): { id: string; embedding: number[] } {
  return { id: String(row.id), embedding: Array.from(row.embedding as Iterable<number>) };
}

async function rowsOf(table: lancedb.Table, ids: readonly string[]): Promise<{ id: string; embedding: number[] }[]> {
  const out: { id: string; embedding: number[] }[] = [];
  for (const predicate of idPredicates(ids))
    for (const row of await table.query().where(predicate).select(['id', 'embedding']).toArray()) out.push(annRow(row));
  return out;
}

/**
 * The `n` nearest rows of an ANN table to each vector, best first, by cosine: its index probes
 * {@link ANN_NPROBES} partitions and re-ranks {@link ANN_REFINE_FACTOR}×n candidates by their full vectors.
 */
export async function annNearest(
  ann: lancedb.Table,
  vectors: readonly Float32Array[],
  n: number,
): Promise<{ id: string; score: number }[][]> {
  return Promise.all(
    vectors.map(async (vector) =>
      (
        await ann
          .vectorSearch(vector)
          .distanceType(DISTANCE)
          .nprobes(ANN_NPROBES)
          .refineFactor(ANN_REFINE_FACTOR)
          .select(['id', '_distance'])
          .limit(n)
          .toArray()
      ).map((row: Record<string, unknown>) => ({ id: String(row.id), score: 1 - Number(row._distance) })),
    ),
  );
}
