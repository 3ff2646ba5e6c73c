// The layout of a search index's LanceDB table: one row per indexed item of any modality (an
// image, one caption, a vector), its l2-normalised embedding, and the metadata the data set's
// manifest carried; the table's schema metadata records what made the embeddings.
import { createHash } from 'node:crypto';
import { closeSync, existsSync, openSync, readSync } from 'node:fs';
import type * as lancedb from '@lancedb/lancedb';
import { Bool, DataType, Field, FixedSizeList, Float32, Float64, Schema, Utf8 } from 'apache-arrow';
import type { ColumnType } from './filter.js';

/**
 * The one distance of every index: cosine (LanceDB's default is L2, and a query's distance must
 * match its index's). Embeddings are l2-normalised, so the score shown is 1 − distance = cosine.
 */
export const DISTANCE = 'cosine' as const;

/** The table name when none is given. */
export const DEFAULT_TABLE = 'items';

/** What made a table's embeddings, kept in its schema metadata under {@link PROVENANCE_KEY}. */
export interface IndexProvenance {
  /** Absolute path of the checkpoint file. */
  checkpoint: string;
  /** SHA-256 of the checkpoint file's bytes. */
  checkpointSha256: string;
  /** The embedding space: 'projection' or 'encoder'. */
  space: 'projection' | 'encoder';
  /** Embedding width. */
  dim: number;
  distance: typeof DISTANCE;
}

export const PROVENANCE_KEY = 'byol_align.index';

/** Columns every table has, with the filterable ones' types. */
export const FIXED_COLUMNS: ReadonlyMap<string, ColumnType> = new Map([
  ['id', 'string'],
  ['item', 'string'],
  ['modality', 'string'],
  ['text', 'string'],
  ['media', 'string'],
]);
/** Columns that are not filterable: the embedding, the content hash, the metadata as JSON. */
const INTERNAL_COLUMNS = new Set(['embedding', 'content', 'metadata']);
const METADATA_COLUMN = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

/** One row as written. */
export interface IndexRow {
  /** `image:ITEM`, `text:ITEM:N` (its Nth caption) or `vector:ITEM`. */
  id: string;
  /** The data set item the row comes from. */
  item: string;
  modality: string;
  /** The caption (text rows). */
  text: string | null;
  /** Absolute path of the image file (image rows). */
  media: string | null;
  /** SHA-256 of what was embedded (image bytes, caption, vector): a re-index re-embeds a row only when it changes. */
  content: string;
  /** The item's metadata as JSON (every field, scalar or not). */
  metadata: string;
  embedding: number[];
  /** The item's scalar metadata fields that have columns of their own (see {@link metadataColumns}). */
  columns: Record<string, unknown>;
}

/** A row as LanceDB takes it: the metadata columns beside the others. */
export function storedRow({ columns, ...row }: IndexRow): Record<string, unknown> {
  return { ...columns, ...row };
}

/** SHA-256 (hex) of a file's bytes, read in 1 MiB pieces. */
export function fileSha256(path: string): string {
  const hash = createHash('sha256');
  const fd = openSync(path, 'r');
  try {
    const buffer = Buffer.alloc(1 << 20);
    for (let n = readSync(fd, buffer); n > 0; n = readSync(fd, buffer)) hash.update(buffer.subarray(0, n));
  } finally {
    closeSync(fd);
  }
  return hash.digest('hex');
}

/**
 * The scalar metadata fields that become columns of their own (so filters can use them): names
 * that are identifiers and not a fixed column, whose values are of one scalar type in every item
 * that has them. Other fields stay in the `metadata` JSON column only.
 */
export function metadataColumns(records: readonly Record<string, unknown>[]): Map<string, ColumnType> {
  const types = new Map<string, ColumnType | null>();
  for (const record of records) {
    for (const [key, value] of Object.entries(record)) {
      if (!METADATA_COLUMN.test(key) || FIXED_COLUMNS.has(key) || INTERNAL_COLUMNS.has(key)) continue;
      if (value === null || value === undefined) continue;
      const type =
        typeof value === 'string'
          ? 'string'
          : typeof value === 'boolean'
            ? 'boolean'
            : typeof value === 'number' && Number.isFinite(value)
              ? 'number'
              : null;
      const seen = types.get(key);
      types.set(key, seen === undefined || seen === type ? type : null);
    }
  }
  return new Map([...types].filter((entry): entry is [string, ColumnType] => entry[1] !== null));
}

const ARROW_TYPES: Record<ColumnType, () => DataType> = {
  string: () => new Utf8(),
  number: () => new Float64(),
  boolean: () => new Bool(),
};

/** The Arrow schema of a new table. */
export function tableSchema(provenance: IndexProvenance, metadata: ReadonlyMap<string, ColumnType>): Schema {
  return new Schema(
    [
      new Field('id', new Utf8(), false),
      new Field('item', new Utf8(), false),
      new Field('modality', new Utf8(), false),
      new Field('text', new Utf8(), true),
      new Field('media', new Utf8(), true),
      new Field('content', new Utf8(), false),
      new Field('metadata', new Utf8(), false),
      ...[...metadata].map(([name, type]) => new Field(name, ARROW_TYPES[type](), true)),
      new Field('embedding', new FixedSizeList(provenance.dim, new Field('item', new Float32(), true)), false),
    ],
    new Map([[PROVENANCE_KEY, JSON.stringify(provenance)]]),
  );
}

/** A table's provenance, or an error naming the table when it has none (not made by `index`). */
export async function tableProvenance(table: lancedb.Table, name: string): Promise<IndexProvenance> {
  const text = (await table.schema()).metadata.get(PROVENANCE_KEY);
  if (text === undefined) throw new Error(`table '${name}' was not made by byol-align index (its schema records no checkpoint)`);
  return JSON.parse(text) as IndexProvenance;
}

/** The filterable columns of a table and their types. */
export async function filterableColumns(table: lancedb.Table): Promise<Map<string, ColumnType>> {
  const out = new Map(FIXED_COLUMNS);
  for (const field of (await table.schema()).fields) {
    if (FIXED_COLUMNS.has(field.name) || INTERNAL_COLUMNS.has(field.name)) continue;
    // By type id, not instanceof: the schema LanceDB returns is built by its own copy of Arrow's classes.
    const t = field.type as DataType;
    const type = DataType.isUtf8(t)
      ? 'string'
      : DataType.isFloat(t) || DataType.isInt(t)
        ? 'number'
        : DataType.isBool(t)
          ? 'boolean'
          : undefined;
    if (type !== undefined) out.set(field.name, type);
  }
  return out;
}

/** Opens an index table, with an error naming the folder and the tables it has when it is missing. */
export async function openIndexTable(db: string, name: string): Promise<{ connection: lancedb.Connection; table: lancedb.Table }> {
  if (!existsSync(db)) throw new Error(`${db}: no such index folder; build one with byol-align index`);
  const connection = await connectLance(db);
  const names = await connection.tableNames();
  if (!names.includes(name)) {
    connection.close();
    throw new Error(`${db}: no table '${name}'${names.length > 0 ? ` (it has ${names.join(', ')})` : ''}; build one with byol-align index`);
  }
  return { connection, table: await connection.openTable(name) };
}

/**
 * A LanceDB connection. The module is loaded on first use, not when byol-align is imported: its
 * native library changes how the process's memory grows (tests/memory.test.ts sees ~28 MiB more
 * RSS over 10,000 training steps with it loaded), and training never needs it.
 */
export async function connectLance(db: string): Promise<lancedb.Connection> {
  await import('./lance_log.js'); // before the native module reads the variable
  const { connect } = await import('@lancedb/lancedb');
  return connect(db);
}

/** A string literal for a LanceDB predicate. */
export function sqlString(value: string): string {
  return `'${value.replaceAll("'", "''")}'`;
}

/** `id IN (...)` predicates over `ids`, 500 ids each: bounded lists keep each predicate small. */
export function idPredicates(ids: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < ids.length; i += 500)
    out.push(
      `id IN (${ids
        .slice(i, i + 500)
        .map(sqlString)
        .join(', ')})`,
    );
  return out;
}
