// Search in memory: a modality's embeddings as one [N, d] tensor, so a batch of queries is one
// matrix product and a top-k (with a bfloat16 first pass on CPUs that have bfloat16 arithmetic).
// LanceDB's flat scan of the 111,909-row icon index takes 120–260 ms a query here, and its IVF
// indexes miss the cross-modal neighbours (docs/search.md);
// LanceDB stays the store, and answers the searches that carry a metadata filter. The rows' other
// columns are kept beside the embeddings: reading a batch's hits back from LanceDB by id (a scan
// with an `id IN (...)` filter) cost more than the search itself (bench/RESULTS.md, issue 14).
import type * as lancedb from '@lancedb/lancedb';
import { noGrad, tensor, tidy, type Tensor } from '../engine/index.js';
import { sqlString } from './table.js';

/**
 * Candidates a bfloat16 first pass keeps per result wanted, and at least: on the 111,909-row icon
 * index the best 10 of 32 rescored in float32 were the exact 10 nearest rows, or rows tying them,
 * for all of 500 caption and 500 image queries (bench/index_recall.ts; docs/search.md).
 */
const CANDIDATES_PER_RESULT = 4;
const MIN_CANDIDATES = 32;

/**
 * One modality's rows: their ids and their unit embeddings. With `firstPass` it also keeps a
 * bfloat16 copy: a batch's product runs against it, and only the best candidates of each query are
 * scored again in float32, so scores are float32's and the product costs less (about 0.7 of
 * float32's time against the icon index's captions, on a CPU with bfloat16 arithmetic: engine
 * cpuHasBf16); a row whose bfloat16 score falls outside the candidates is missed (the rates above).
 */
export class EmbeddingMatrix {
  private constructor(
    readonly ids: readonly string[],
    private readonly matrix: Tensor,
    private readonly firstPass: Tensor | null,
  ) {}

  static of(ids: readonly string[], values: Float32Array, dim: number, options: { firstPass?: boolean } = {}): EmbeddingMatrix {
    const matrix = tensor(values, { shape: [ids.length, dim] });
    return new EmbeddingMatrix(ids, matrix, options.firstPass === true ? matrix.to('bfloat16') : null);
  }

  /** The `n` best rows for each query of `queries` ([Q, d] unit vectors), best first, by cosine. */
  top(queries: Float32Array, count: number, n: number): { id: string; score: number }[][] {
    const take = Math.min(n, this.ids.length);
    if (take === 0) return Array.from({ length: count }, () => []);
    const dim = queries.length / count;
    const candidates = Math.max(MIN_CANDIDATES, CANDIDATES_PER_RESULT * take);
    const { scores, rows } = noGrad(() =>
      tidy(() => {
        const q = tensor(queries, { shape: [count, dim] });
        if (this.firstPass === null || candidates >= this.ids.length) {
          const { values, indices } = q.matmul(this.matrix.t()).topk(take, 1);
          return { scores: values.data() as Float32Array, rows: indices.data() as BigInt64Array };
        }
        const pool = q.to('bfloat16').matmul(this.firstPass.t()).topk(candidates, 1).indices; // [Q, candidates]
        const rescored = this.matrix.indexSelect(0, pool.flatten()).reshape(count, candidates, dim).bmm(q.unsqueeze(2)).squeeze(2);
        const { values, indices } = rescored.topk(take, 1);
        return { scores: values.data() as Float32Array, rows: pool.gather(1, indices).data() as BigInt64Array };
      }),
    );
    return Array.from({ length: count }, (_, q) =>
      Array.from({ length: take }, (_, j) => ({ id: this.ids[Number(rows[q * take + j])]!, score: scores[q * take + j]! })),
    );
  }

  dispose(): void {
    this.matrix.dispose();
    this.firstPass?.dispose();
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

/**
 * Reads every row of `table` into memory, less those of the modalities in `except`; `firstPass`
 * gives each modality's matrix a bfloat16 copy to search first ({@link EmbeddingMatrix}).
 */
export async function loadMemoryTable(
  table: lancedb.Table,
  dim: number,
  except: readonly string[] = [],
  options: { firstPass?: boolean } = {},
): Promise<MemoryTable> {
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
    matrices.set(modality, EmbeddingMatrix.of(ids, values, dim, options));
  }
  return { matrices, rows };
}
