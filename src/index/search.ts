// Searching an index: queries (a text, an image, a vector-modality input, or a point of the shared
// space) are embedded with the checkpoint that built the table, then the table's nearest rows by
// cosine similarity are returned, optionally of one modality and through a metadata filter.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type * as lancedb from '@lancedb/lancedb';
import { cpuHasBf16 } from '../engine/index.js';
import { captionText, DatasetError, sniffImageFormat } from '../data/paired.js';
import { VectorInputError } from '../modalities/vector/index.js';
import { loadModel, type LoadedModel } from '../run/model_setup.js';
import { embedInputs } from '../run/embed_run.js';
import { closeModel } from './build.js';
import { loadMemoryTable, ROW_COLUMNS, storedRowOf, type MemoryTable, type StoredRow } from './memory.js';
import { annModalities, annNearest, annTableName } from './ann.js';
import { filterSql, IndexQueryError, type ColumnType, type Filter } from './filter.js';
import {
  DEFAULT_TABLE,
  DISTANCE,
  fileSha256,
  filterableColumns,
  idPredicates,
  openIndexTable,
  sqlString,
  tableProvenance,
  type IndexProvenance,
} from './table.js';

/**
 * A query: `text`; `image` (a file path, or the file's bytes); `vector` (an input of the model's
 * vector modality); or `embedding` (a point of the index's space, used as it is after l2-normalising).
 */
export type SearchQuery = { text: string } | { image: string | Uint8Array } | { vector: number[] } | { embedding: number[] };

export interface SearchOptions {
  /** Results per query (default 10, at most 1000). */
  k?: number;
  /** Results to skip first, for paging (default 0). */
  offset?: number;
  /** Only rows of this modality. */
  modality?: string;
  /** Metadata conditions (see {@link Filter}). */
  where?: Filter;
}

/** One caller's search, as {@link SearchIndex.searchMany} takes it. */
export interface SearchRequest {
  queries: readonly SearchQuery[];
  options?: SearchOptions;
}

/** One result. `score` is the cosine similarity of the query and the row. */
export interface SearchHit {
  rank: number;
  score: number;
  id: string;
  item: string;
  modality: string;
  text: string | null;
  media: string | null;
  metadata: Record<string, unknown>;
}

/** An indexed row without its embedding. */
export type IndexedItem = Omit<SearchHit, 'rank' | 'score'>;

/**
 * One result with its row as the index holds it (`metadata` still JSON text): what a server writes
 * out. A row held in memory is the same object in every answer (so what is made from it can be
 * kept; and it must not be changed).
 */
export interface RowHit {
  rank: number;
  score: number;
  row: StoredRow;
}

export interface OpenIndexOptions {
  db: string;
  table?: string;
  /** The checkpoint to embed queries with (default: the one recorded in the table); refused unless it is that one. */
  checkpoint?: string;
  onSkip?: (message: string) => void;
  /** Where queries are embedded: a device setting (cpu, the default, auto, cuda, cuda:N). */
  device?: string;
  /**
   * Search the rows held in memory with float32 products alone. By default, on a CPU with bfloat16
   * arithmetic, a bfloat16 copy is searched first and each query's best candidates are rescored in
   * float32 (memory.ts and docs/search.md: less of the product's time, the same answers on the icon index).
   */
  exact?: boolean;
  /**
   * Embed a search's queries under bfloat16 autocast (embedBatches): about a third less time for
   * the text tower and head on a CPU with bfloat16 arithmetic, scores within about 1e-3 of
   * float32's, so rows that nearly tie can swap, and a query's answer can change with the batch
   * it is embedded in (docs/search.md). `embed` stays float32. Not with `exact`.
   */
  bf16Queries?: boolean;
}

export const MAX_K = 1000;
/** A stored row as a caller sees it: its metadata parsed (a new object each time). */
function itemOf(row: StoredRow): IndexedItem {
  return { ...row, metadata: JSON.parse(row.metadata) as Record<string, unknown> };
}

/** A checkpoint other than the one that built the table: refused, naming both. */
export class CheckpointMismatchError extends Error {
  override readonly name = 'CheckpointMismatchError';
}

/**
 * An open index: its table and the model that embeds its queries, loaded once (a server keeps one).
 *
 * @example
 * const index = await SearchIndex.open({ db: 'icons.lance' });
 * const [hits] = await index.search([{ text: 'a red heart' }], { k: 5, modality: 'image' });
 * await index.close();
 */
export class SearchIndex {
  private constructor(
    readonly provenance: IndexProvenance,
    readonly loaded: LoadedModel,
    readonly columns: ReadonlyMap<string, ColumnType>,
    private readonly connection: lancedb.Connection,
    private readonly table: lancedb.Table,
    /** Every row of the modalities without an ANN table, for searches without a metadata filter; read when the index opens. */
    private readonly memory: MemoryTable,
    /** The ANN tables by modality (src/index/ann.ts): their modalities are searched there, not in memory. */
    private readonly ann: ReadonlyMap<string, lancedb.Table>,
    /** What a search's queries are embedded in (`bf16Queries` in OpenIndexOptions). */
    private readonly searchPrecision: 'float32' | 'bfloat16',
  ) {}

  static async open(options: OpenIndexOptions): Promise<SearchIndex> {
    if (options.exact === true && options.bf16Queries === true)
      throw new RangeError('SearchIndex.open: exact searches in float32 alone; it cannot be given with bf16Queries');
    const tableName = options.table ?? DEFAULT_TABLE;
    const { connection, table } = await openIndexTable(options.db, tableName);
    try {
      const provenance = await tableProvenance(table, tableName);
      const loaded = loadModel(options.checkpoint ?? provenance.checkpoint, options.onSkip, options.device);
      const file = resolve(loaded.checkpoint.file);
      const sha256 = fileSha256(file);
      if (sha256 !== provenance.checkpointSha256) {
        await closeModel(loaded);
        throw new CheckpointMismatchError(
          options.checkpoint === undefined
            ? `${file} changed since table '${tableName}' was built (sha256 ${sha256.slice(0, 12)}, recorded ${provenance.checkpointSha256.slice(0, 12)}); re-index with byol-align index --rebuild`
            : `table '${tableName}' was built with ${provenance.checkpoint} (sha256 ${provenance.checkpointSha256.slice(0, 12)}); ${file} (sha256 ${sha256.slice(0, 12)}) embeds into another space, so its queries would not match`,
        );
      }
      const ann = new Map<string, lancedb.Table>();
      for (const modality of await annModalities(connection, tableName))
        ann.set(modality, await connection.openTable(annTableName(tableName, modality)));
      return new SearchIndex(
        provenance,
        loaded,
        await filterableColumns(table),
        connection,
        table,
        await loadMemoryTable(table, provenance.dim, [...ann.keys()], { firstPass: options.exact !== true && cpuHasBf16() }),
        ann,
        options.bf16Queries === true ? 'bfloat16' : 'float32',
      );
    } catch (err) {
      connection.close();
      throw err;
    }
  }

  /** The l2-normalised embeddings of `queries`, one float32 forward per modality for the whole list. */
  embed(queries: readonly SearchQuery[]): Promise<Float32Array[]> {
    return this.embedIn('float32', queries);
  }

  /** {@link embed}, the forward run in `precision` (embedInputs). */
  private async embedIn(precision: 'float32' | 'bfloat16', queries: readonly SearchQuery[]): Promise<Float32Array[]> {
    const out = new Array<Float32Array>(queries.length);
    const dim = this.provenance.dim;
    const byModality = new Map<string, { at: number[]; items: unknown[] }>();
    const scratch: string[] = [];
    try {
      queries.forEach((query, at) => {
        const q = query as Record<string, unknown>;
        const keys = Object.keys(q);
        if (keys.length !== 1 || !['text', 'image', 'vector', 'embedding'].includes(keys[0]!))
          throw new IndexQueryError(
            `query ${at}: expected exactly one of text, image, vector or embedding, got ${keys.join(', ') || 'nothing'}`,
          );
        if ('embedding' in q) {
          out[at] = unitVector(q.embedding, dim, `query ${at}: embedding`);
          return;
        }
        const modality = keys[0]!;
        if (!this.loaded.modalities.some((m) => m.name === modality))
          throw new IndexQueryError(
            `query ${at}: the model has no ${modality} modality (it has ${this.loaded.modalities.map((m) => m.name).join(', ')})`,
          );
        let item: unknown = q[modality];
        if (modality === 'text') {
          if (typeof item !== 'string' || item.trim() === '') throw new IndexQueryError(`query ${at}: text must be a non-empty string`);
          item = captionText(item);
        } else if (modality === 'image') {
          if (item instanceof Uint8Array) {
            if (sniffImageFormat(item.subarray(0, 16)) === null)
              throw new IndexQueryError(`query ${at}: image is not a PNG, JPEG, WebP or GIF file`);
            // The decoder pool reads files, and keeps its checks (size limits, truncation) there.
            const dir = mkdtempSync(join(tmpdir(), 'byol-query-'));
            scratch.push(dir);
            const file = join(dir, 'query');
            writeFileSync(file, item);
            item = file;
          } else if (typeof item !== 'string') throw new IndexQueryError(`query ${at}: image must be a file path or bytes`);
        } else if (!Array.isArray(item) || !item.every((v) => typeof v === 'number' && Number.isFinite(v)))
          throw new IndexQueryError(`query ${at}: vector must be a list of finite numbers`);
        const group = byModality.get(modality) ?? { at: [], items: [] };
        group.at.push(at);
        group.items.push(item);
        byModality.set(modality, group);
      });
      for (const [modality, group] of byModality) {
        let embeddings;
        try {
          ({ embeddings } = await embedInputs(
            this.loaded,
            modality,
            { ids: group.at.map(String), items: group.items },
            { space: this.provenance.space, precision },
          ));
        } catch (err) {
          if (err instanceof DatasetError || err instanceof VectorInputError)
            throw new IndexQueryError(
              `${modality} query: ${err.message.replaceAll(/\/tmp\/byol-query-[^/]+\/query/g, 'the uploaded image')}`,
            );
          throw err;
        }
        const values = embeddings.data() as Float32Array;
        embeddings.dispose();
        group.at.forEach((at, r) => (out[at] = values.slice(r * dim, (r + 1) * dim)));
      }
    } finally {
      for (const dir of scratch) rmSync(dir, { recursive: true, force: true });
    }
    return out;
  }

  /** The nearest rows to each query, best first. */
  async search(queries: readonly SearchQuery[], options: SearchOptions = {}): Promise<SearchHit[][]> {
    return (await this.searchMany([{ queries, options }]))[0]!;
  }

  /**
   * Several searches at once, each answered as {@link search} answers it alone: one embedding pass
   * for all their queries (one forward per modality) and, for those without a metadata filter, one
   * matrix product and top-k per modality searched. A bad query or option fails the whole call; a
   * caller gathering others' searches (src/serve/query_batcher.ts) then runs them one by one.
   *
   * @example
   * const [forHeart, forStar] = await index.searchMany([
   *   { queries: [{ text: 'a red heart' }], options: { k: 5, modality: 'image' } },
   *   { queries: [{ text: 'a star' }], options: { k: 10 } },
   * ]);
   */
  async searchMany(requests: readonly SearchRequest[]): Promise<SearchHit[][][]> {
    const answers = await this.searchRows(requests);
    return answers.map((perQuery) => perQuery.map((hits) => hits.map(({ rank, score, row }) => ({ rank, score, ...itemOf(row) }))));
  }

  /** What {@link searchMany} answers, each hit with its stored row (its metadata not parsed). */
  async searchRows(requests: readonly SearchRequest[]): Promise<RowHit[][][]> {
    const checked = requests.map(({ options = {} }) => {
      const k = options.k ?? 10;
      const offset = options.offset ?? 0;
      if (!Number.isInteger(k) || k < 1 || k > MAX_K) throw new IndexQueryError(`k must be an integer from 1 to ${MAX_K}, got ${k}`);
      if (!Number.isInteger(offset) || offset < 0 || offset + k > 10 * MAX_K)
        throw new IndexQueryError(`offset must be an integer from 0 with offset + k at most ${10 * MAX_K}, got ${offset}`);
      const where = filterSql(
        { ...(options.where ?? {}), ...(options.modality === undefined ? {} : { modality: options.modality }) },
        this.columns,
      );
      return { k, offset, modality: options.modality, where, filtered: Object.keys(options.where ?? {}).length > 0 };
    });
    const vectors = await this.embedIn(
      this.searchPrecision,
      requests.flatMap((r) => r.queries),
    );
    const perQuery = requests.flatMap((r, i) => r.queries.map(() => checked[i]!));
    // Searches without a filter, by the modality they search: one product and top-k for each.
    const best = new Array<{ id: string; score: number }[]>(vectors.length);
    const byModality = new Map<string | undefined, number[]>();
    perQuery.forEach(({ filtered, modality }, q) => {
      if (filtered) return;
      const group = byModality.get(modality) ?? [];
      group.push(q);
      byModality.set(modality, group);
    });
    for (const [modality, at] of byModality) {
      const nearest = await this.nearest(
        at.map((q) => vectors[q]!),
        Math.max(...at.map((q) => perQuery[q]!.offset + perQuery[q]!.k)),
        modality,
      );
      at.forEach((q, i) => (best[q] = nearest[i]!.slice(perQuery[q]!.offset, perQuery[q]!.offset + perQuery[q]!.k)));
    }
    const rows = await this.rowsById(best.flat().map((b) => b.id));
    const hits = await Promise.all(
      vectors.map(async (vector, q) => {
        const { k, offset, where, filtered } = perQuery[q]!;
        if (filtered) return this.searchScanned(vector, k, offset, where);
        // A row of an ANN table deleted since the index opened has no row to show.
        return best[q]!.filter(({ id }) => rows.has(id)).map(({ id, score }, i) => ({ rank: offset + i + 1, score, row: rows.get(id)! }));
      }),
    );
    let next = 0;
    return requests.map((r) => hits.slice(next, (next += r.queries.length)));
  }

  /** LanceDB's exact flat scan, with the filter applied first. */
  private async searchScanned(vector: Float32Array, k: number, offset: number, where: string | undefined): Promise<RowHit[]> {
    let query = this.table
      .vectorSearch(vector)
      .distanceType(DISTANCE)
      .select([...ROW_COLUMNS, '_distance'])
      .limit(k)
      .offset(offset);
    if (where !== undefined) query = query.where(where);
    const rows = await query.toArray();
    return rows.map((row: Record<string, unknown>, i: number) => ({
      rank: offset + i + 1,
      score: 1 - Number(row._distance),
      row: storedRowOf(row),
    }));
  }

  /**
   * The `n` nearest rows (of one modality, or of all) to each vector, best first: one matrix
   * product per modality held in memory, the ANN table's search for the others.
   */
  private async nearest(vectors: Float32Array[], n: number, modality: string | undefined): Promise<{ id: string; score: number }[][]> {
    const flat = new Float32Array(vectors.length * this.provenance.dim);
    vectors.forEach((v, i) => flat.set(v, i * this.provenance.dim));
    const modalities = modality === undefined ? [...this.memory.matrices.keys(), ...this.ann.keys()] : [modality];
    const perModality = await Promise.all(
      modalities.map(async (m) => {
        const ann = this.ann.get(m);
        if (ann !== undefined) return annNearest(ann, vectors, n);
        return this.memory.matrices.get(m)?.top(flat, vectors.length, n) ?? vectors.map(() => []);
      }),
    );
    return vectors.map((_, q) =>
      perModality
        .flatMap((top) => top[q]!)
        .sort((a, b) => b.score - a.score)
        .slice(0, n),
    );
  }

  /** The rows of these ids: from memory, or (rows of an ANN table's modality) from the table, read in chunks of 500. */
  private async rowsById(ids: readonly string[]): Promise<Map<string, StoredRow>> {
    const rows = new Map<string, StoredRow>();
    const unread: string[] = [];
    for (const id of new Set(ids)) {
      const row = this.memory.rows.get(id);
      if (row !== undefined) rows.set(id, row);
      else unread.push(id);
    }
    for (const predicate of idPredicates(unread)) {
      for (const row of await this.table.query().where(predicate).select(ROW_COLUMNS).toArray()) rows.set(String(row.id), storedRowOf(row));
    }
    return rows;
  }

  /** The row with this id, or undefined. */
  async item(id: string): Promise<IndexedItem | undefined> {
    const rows = await this.table
      .query()
      .where(`id = ${sqlString(id)}`)
      .select(ROW_COLUMNS)
      .limit(1)
      .toArray();
    return rows.length === 0 ? undefined : itemOf(storedRowOf(rows[0] as Record<string, unknown>));
  }

  /** Rows in the table. */
  count(): Promise<number> {
    return this.table.countRows();
  }

  async close(): Promise<void> {
    for (const m of this.memory.matrices.values()) m.dispose();
    this.connection.close();
    await closeModel(this.loaded);
  }
}

/** `value` as a unit Float32Array of length `dim`, or an IndexQueryError naming `what`. */
function unitVector(value: unknown, dim: number, what: string): Float32Array {
  if (!Array.isArray(value) || value.length !== dim)
    throw new IndexQueryError(
      `${what}: expected ${dim} numbers (the index's width), got ${Array.isArray(value) ? value.length : typeof value}`,
    );
  if (!value.every((v) => typeof v === 'number' && Number.isFinite(v)))
    throw new IndexQueryError(`${what}: every value must be a finite number`);
  const norm = Math.hypot(...value);
  if (norm === 0) throw new IndexQueryError(`${what}: the zero vector has no direction`);
  return Float32Array.from(value, (v: number) => v / norm);
}

/**
 * One query against an index, opening and closing it (the CLI's search; a server keeps a {@link SearchIndex}).
 *
 * @example
 * const hits = await searchIndex({ db: 'icons.lance', query: { text: 'a red heart' }, k: 5, modality: 'image' });
 */
export async function searchIndex(options: OpenIndexOptions & SearchOptions & { query: SearchQuery }): Promise<SearchHit[]> {
  const index = await SearchIndex.open(options);
  try {
    return (await index.search([options.query], options))[0]!;
  } finally {
    await index.close();
  }
}
