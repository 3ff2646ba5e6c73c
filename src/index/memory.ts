// Exact search in memory: a modality's embeddings as one [N, d] tensor, so a batch of queries is
// one matrix product and a top-k. LanceDB's flat scan of the 111,909-row icon index takes
// 120–260 ms a query here, and its IVF indexes miss the cross-modal neighbours (docs/search.md);
// LanceDB stays the store, and answers the searches that carry a metadata filter. The rows' other
// columns are kept beside the embeddings: reading a batch's hits back from LanceDB by id (a scan
// with an `id IN (...)` filter) cost more than the search itself (bench/RESULTS.md, issue 14).
import type * as lancedb from '@lancedb/lancedb';
import { noGrad, tensor, tidy, type Tensor } from '../engine/index.js';
import { sqlString } from './table.js';

/** One modality's rows: their ids and their unit embeddings. */
export class EmbeddingMatrix {
  private constructor(
    readonly ids: readonly string[],
    private readonly matrix: Tensor,
  ) {}

  static of(ids: readonly string[], values: Float32Array, dim: number): EmbeddingMatrix {
    return new EmbeddingMatrix(ids, tensor(values, { shape: [ids.length, dim] }));
  }

  /** The `n` best rows for each query of `queries` ([Q, d] unit vectors), best first, by cosine. */
  top(queries: Float32Array, count: number, n: number): { id: string; score: number }[][] {
    const take = Math.min(n, this.ids.length);
    if (take === 0) return Array.from({ length: count }, () => []);
    const dim = queries.length / count;
    const { scores, rows } = noGrad(() =>
      tidy(() => {
        const { values, indices } = tensor(queries, { shape: [count, dim] })
          .matmul(this.matrix.t())
          .topk(take, 1);
        return { scores: values.data() as Float32Array, rows: indices.data() as BigInt64Array };
      }),
    );
    return Array.from({ length: count }, (_, q) =>
      Array.from({ length: take }, (_, j) => ({ id: this.ids[Number(rows[q * take + j])]!, score: scores[q * take + j]! })),
    );
  }

  dispose(): void {
    this.matrix.dispose();
  }
}

/** A row's columns as the table stores them, without its embedding (`metadata` is JSON text). */
export interface StoredRow {
  id: string;
  item: string;
  modality: string;
  text: string | null;
  media: string | null;
  metadata: string;
}

/** The columns of {@link StoredRow}. */
export const ROW_COLUMNS = ['id', 'item', 'modality', 'text', 'media', 'metadata'];

/** A table row as a {@link StoredRow}. */
export function storedRowOf(row: Record<string, unknown>): StoredRow {
  return {
    id: String(row.id),
    item: String(row.item),
    modality: String(row.modality),
    text: (row.text as string | null) ?? null,
    media: (row.media as string | null) ?? null,
    metadata: String(row.metadata),
  };
}

/** A table held in memory: every row's embedding by modality, and every row's other columns by id. */
export interface MemoryTable {
  matrices: Map<string, EmbeddingMatrix>;
  rows: Map<string, StoredRow>;
}

/** Reads every row of `table` into memory, less those of the modalities in `except`. */
export async function loadMemoryTable(table: lancedb.Table, dim: number, except: readonly string[] = []): Promise<MemoryTable> {
  const parts = new Map<string, { ids: string[]; chunks: Float32Array[] }>();
  const rows = new Map<string, StoredRow>();
  let query = table.query().select([...ROW_COLUMNS, 'embedding']);
  if (except.length > 0) query = query.where(`modality NOT IN (${except.map(sqlString).join(', ')})`);
  for (const row of await query.toArray()) {
    const stored = storedRowOf(row);
    rows.set(stored.id, stored);
    const part = parts.get(stored.modality) ?? { ids: [], chunks: [] };
    part.ids.push(stored.id);
    part.chunks.push((row.embedding as { toArray(): Float32Array }).toArray());
    parts.set(stored.modality, part);
  }
  const matrices = new Map<string, EmbeddingMatrix>();
  for (const [modality, { ids, chunks }] of parts) {
    const values = new Float32Array(ids.length * dim);
    chunks.forEach((chunk, i) => values.set(chunk, i * dim));
    matrices.set(modality, EmbeddingMatrix.of(ids, values, dim));
  }
  return { matrices, rows };
}
