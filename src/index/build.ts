// Building a search index: every item of every modality of a data set, embedded with a trained
// checkpoint in the space `embed` uses, upserted by id into a LanceDB table. A re-run embeds only
// rows that are new or whose content changed.
import { createHash } from 'node:crypto';
import { resolve } from 'node:path';
import type * as lancedb from '@lancedb/lancedb';
import { loadDataSource } from '../data/source.js';
import { readRegularFile } from '../data/safe_read.js';
import type { PairedItem } from '../data/paired.js';
import { loadModel, runDataOptions, type LoadedModel } from '../run/model_setup.js';
import { embedInputs } from '../run/embed_run.js';
import {
  connectLance,
  DEFAULT_TABLE,
  DISTANCE,
  FIXED_COLUMNS,
  fileSha256,
  filterableColumns,
  metadataColumns,
  sqlString,
  storedRow,
  tableProvenance,
  tableSchema,
  openIndexTable,
  type IndexProvenance,
  type IndexRow,
} from './table.js';
import type { ColumnType } from './filter.js';
import { annModalities, annTableName, DEFAULT_ANN_MIN_ROWS, deleteIds, syncAnnTables, type AnnSync } from './ann.js';

/** Progress of {@link buildIndex}: rows embedded so far of those that needed it. */
export interface IndexProgress {
  done: number;
  total: number;
  modality: string;
}

export interface BuildIndexOptions {
  /** A checkpoint file or run directory (its newest good checkpoint). */
  checkpoint: string;
  /** coco:FILE, karpathy:FILE[#split] or jsonl:FILE (see loadDataSource). */
  data: string;
  /** The image folder of a COCO or Karpathy data set. */
  images?: string;
  /** The LanceDB folder (made if missing). */
  db: string;
  /** Default 'items'. */
  table?: string;
  /** Replace a table made by another checkpoint instead of refusing (default false). */
  rebuild?: boolean;
  /** Inputs per forward (default 256). */
  batchSize?: number;
  onProgress?: (progress: IndexProgress) => void;
  /** Told about broken newer checkpoints that were skipped. */
  onSkip?: (message: string) => void;
  /** Where the items are embedded: a device setting (cpu, the default, auto, cuda, cuda:N). */
  device?: string;
  /** Rows of one modality from which it gets an ANN table (src/index/ann.ts; default {@link DEFAULT_ANN_MIN_ROWS}). */
  annMinRows?: number;
}

export interface BuildIndexResult {
  table: string;
  provenance: IndexProvenance;
  /** Rows embedded and written (new or changed), by modality. */
  written: Record<string, number>;
  /** Rows whose input was unchanged but whose item's metadata changed: rewritten with their stored embedding. */
  metadataUpdated: number;
  /** Rows already indexed with the same input and metadata. */
  unchanged: number;
  /** Rows in the table afterwards. */
  rows: number;
  /** Modalities the data has that the model does not embed (left out). */
  skippedModalities: string[];
  /** What happened to each modality's ANN table. */
  ann: AnnSync;
}

/** A row before embedding: what to embed and everything else the table keeps. */
interface PendingRow {
  row: Omit<IndexRow, 'embedding'>;
  input: unknown;
}

const sha256 = (...parts: (string | Uint8Array)[]): string => {
  const hash = createHash('sha256');
  for (const part of parts) hash.update(part).update('\0');
  return hash.digest('hex');
};

/** The item's metadata: what the manifest carries besides its image, captions and vector. */
function itemMetadata(item: PairedItem): Record<string, unknown> {
  const metadata = { ...item.extra };
  delete metadata.vector;
  return metadata;
}

function pendingRows(
  items: readonly PairedItem[],
  columns: ReadonlyMap<string, ColumnType>,
  modalities: ReadonlySet<string>,
): PendingRow[] {
  const rows: PendingRow[] = [];
  for (const item of items) {
    const metadata = itemMetadata(item);
    const json = JSON.stringify(metadata);
    const scalars = Object.fromEntries([...columns.keys()].map((c) => [c, typeof metadata[c] === columns.get(c) ? metadata[c] : null]));
    const base = { item: item.id, metadata: json, columns: scalars };
    if (item.image !== undefined && modalities.has('image'))
      rows.push({
        row: {
          ...base,
          id: `image:${item.id}`,
          modality: 'image',
          text: null,
          media: item.image,
          content: sha256(readRegularFile(item.image)),
        },
        input: item.image,
      });
    if (modalities.has('text'))
      item.captions.forEach((caption, n) =>
        rows.push({
          row: { ...base, id: `text:${item.id}:${n}`, modality: 'text', text: caption, media: null, content: sha256(caption) },
          input: caption,
        }),
      );
    const vector = item.extra?.vector;
    if (vector !== undefined && modalities.has('vector'))
      rows.push({
        row: { ...base, id: `vector:${item.id}`, modality: 'vector', text: null, media: null, content: sha256(JSON.stringify(vector)) },
        input: vector,
      });
  }
  return rows;
}

/** The modalities the data has (image, text, vector). */
function dataModalities(items: readonly PairedItem[]): Set<string> {
  const out = new Set<string>();
  for (const item of items) {
    if (item.image !== undefined) out.add('image');
    if (item.captions.length > 0) out.add('text');
    if (item.extra?.vector !== undefined) out.add('vector');
  }
  return out;
}

/** Releases the image decoding pool of a loaded model's modalities. */
export async function closeModel(loaded: LoadedModel): Promise<void> {
  await Promise.all(loaded.modalities.map((m) => (m as { close?: () => Promise<void> }).close?.()));
}

/**
 * Embeds every image, caption and vector of a data set with a checkpoint into a LanceDB table,
 * adding only rows that are new or changed since the last run (upsert by id).
 *
 * @example
 * await buildIndex({ checkpoint: 'runs/icons', data: 'coco:icons/captions.json', images: 'icons/images', db: 'icons.lance' });
 */
export async function buildIndex(options: BuildIndexOptions): Promise<BuildIndexResult> {
  const tableName = options.table ?? DEFAULT_TABLE;
  const loaded = loadModel(options.checkpoint, options.onSkip, options.device);
  try {
    const dataset = loadDataSource(options.data, {
      images: options.images,
      defaultSplit: 'test',
      ...runDataOptions(loaded.config),
    });
    const checkpoint = resolve(loaded.checkpoint.file);
    const space = loaded.retrievalSpace === 'pairing' ? 'projection' : loaded.retrievalSpace;
    const modelModalities = new Set(loaded.modalities.map((m) => m.name));
    const inData = dataModalities(dataset.items);
    const skippedModalities = [...inData].filter((m) => !modelModalities.has(m));

    const connection = await connectLance(options.db);
    try {
      let table = (await connection.tableNames()).includes(tableName) ? await connection.openTable(tableName) : undefined;
      const provenance: IndexProvenance = { checkpoint, checkpointSha256: fileSha256(checkpoint), space, dim: 0, distance: DISTANCE };
      if (table !== undefined) {
        const recorded = await tableProvenance(table, tableName);
        const same = recorded.checkpointSha256 === provenance.checkpointSha256 && recorded.space === space;
        if (!same && options.rebuild !== true)
          throw new Error(
            `table '${tableName}' in ${options.db} holds embeddings of ${recorded.checkpoint} (sha256 ${recorded.checkpointSha256.slice(0, 12)}, ${recorded.space} space), ` +
              `not of ${checkpoint} (sha256 ${provenance.checkpointSha256.slice(0, 12)}, ${space} space); index into another --table, or pass --rebuild to replace it`,
          );
        if (!same) {
          table = undefined;
          // The ANN tables hold the old space's embeddings: rebuilt below from the new rows.
          for (const modality of await annModalities(connection, tableName)) await connection.dropTable(annTableName(tableName, modality));
        }
      }
      const columns = table !== undefined ? await existingMetadataColumns(table) : metadataColumns(dataset.items.map(itemMetadata));
      const all = pendingRows(dataset.items, columns, modelModalities);
      const known = new Map<string, { content: string; metadata: string }>();
      if (table !== undefined)
        for (const row of await table.query().select(['id', 'content', 'metadata']).toArray())
          known.set(String(row.id), { content: String(row.content), metadata: String(row.metadata) });
      const pending = all.filter(({ row }) => known.get(row.id)?.content !== row.content);
      // Rows whose input is unchanged keep their embedding when only the item's metadata changed.
      const relabelled = all.filter(
        ({ row }) => known.get(row.id)?.content === row.content && known.get(row.id)?.metadata !== row.metadata,
      );
      if (table !== undefined && relabelled.length > 0) await rewriteMetadata(table, relabelled);

      const written: Record<string, number> = {};
      let done = 0;
      const batchSize = options.batchSize ?? 256;
      const rowsPerWrite = Math.max(batchSize, 4096);
      for (const modality of ['image', 'text', 'vector']) {
        const rows = pending.filter((r) => r.row.modality === modality);
        for (let start = 0; start < rows.length; start += rowsPerWrite) {
          const chunk = rows.slice(start, start + rowsPerWrite);
          const out: Record<string, unknown>[] = [];
          for (let i = 0; i < chunk.length; i += batchSize) {
            const slice = chunk.slice(i, i + batchSize);
            const { embeddings } = await embedInputs(
              loaded,
              modality,
              { ids: slice.map((r) => r.row.id), items: slice.map((r) => r.input) },
              { space, batchSize },
            );
            const [n, dim] = embeddings.shape as [number, number];
            const values = embeddings.data() as Float32Array;
            embeddings.dispose();
            provenance.dim = dim;
            slice.forEach(({ row }, r) => out.push(storedRow({ ...row, embedding: Array.from(values.subarray(r * dim, (r + 1) * dim)) })));
            done += n;
            options.onProgress?.({ done, total: pending.length, modality });
          }
          if (table === undefined)
            table = await connection.createTable(tableName, out, { schema: tableSchema(provenance, columns), mode: 'overwrite' });
          else await table.mergeInsert('id').whenMatchedUpdateAll().whenNotMatchedInsertAll().execute(out);
          written[modality] = (written[modality] ?? 0) + out.length;
        }
      }
      if (table === undefined)
        throw new Error(
          `${options.data}: nothing to index (the model embeds ${[...modelModalities].join(', ')}; the data has ${[...inData].join(', ') || 'no items'})`,
        );
      if (pending.length + relabelled.length > 0 && known.size > 0) await table.optimize();
      const ann = await syncAnnTables(
        connection,
        tableName,
        table,
        new Set(pending.map(({ row }) => row.id)),
        options.annMinRows ?? DEFAULT_ANN_MIN_ROWS,
        (await tableProvenance(table, tableName)).dim,
      );
      return {
        table: tableName,
        provenance: await tableProvenance(table, tableName),
        written,
        metadataUpdated: relabelled.length,
        unchanged: all.length - pending.length - relabelled.length,
        rows: await table.countRows(),
        skippedModalities,
        ann,
      };
    } finally {
      connection.close();
    }
  } finally {
    await closeModel(loaded);
  }
}

async function rewriteMetadata(table: lancedb.Table, rows: readonly PendingRow[]): Promise<void> {
  for (let i = 0; i < rows.length; i += 500) {
    const slice = rows.slice(i, i + 500);
    const stored = await table
      .query()
      .where(`id IN (${slice.map((r) => sqlString(r.row.id)).join(', ')})`)
      .select(['id', 'embedding'])
      .toArray();
    const embeddings = new Map(stored.map((r: Record<string, unknown>) => [String(r.id), Array.from(r.embedding as Iterable<number>)]));
    await table
      .mergeInsert('id')
      .whenMatchedUpdateAll()
      .execute(slice.map(({ row }) => storedRow({ ...row, embedding: embeddings.get(row.id)! })));
  }
}

async function existingMetadataColumns(table: lancedb.Table): Promise<Map<string, ColumnType>> {
  const out = await filterableColumns(table);
  for (const fixed of FIXED_COLUMNS.keys()) out.delete(fixed);
  return out;
}

/**
 * Removes rows by id; returns how many were there.
 *
 * @example
 * await deleteItems({ db: 'icons.lance', ids: ['image:42', 'text:42:0'] });
 */
export async function deleteItems(options: { db: string; table?: string; ids: readonly string[] }): Promise<number> {
  const tableName = options.table ?? DEFAULT_TABLE;
  const { connection, table } = await openIndexTable(options.db, tableName);
  try {
    const removed = await deleteIds(table, options.ids);
    for (const modality of await annModalities(connection, tableName))
      await deleteIds(await connection.openTable(annTableName(tableName, modality)), options.ids);
    return removed;
  } finally {
    connection.close();
  }
}
