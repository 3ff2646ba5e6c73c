// Exact search in memory: a modality's embeddings as one [N, d] tensor, so a batch of queries is
// one matrix product and a top-k. LanceDB's flat scan of the 111,909-row icon index takes
// 120–260 ms a query here, and its IVF indexes miss the cross-modal neighbours (docs/search.md);
// LanceDB stays the store, and answers the searches that carry a metadata filter.
import type * as lancedb from '@lancedb/lancedb';
import { noGrad, tensor, tidy, type Tensor } from '../engine/index.js';

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

/** Every row's embedding, by modality. */
export async function loadMatrices(table: lancedb.Table, dim: number): Promise<Map<string, EmbeddingMatrix>> {
  const parts = new Map<string, { ids: string[]; chunks: Float32Array[] }>();
  for (const row of await table.query().select(['id', 'modality', 'embedding']).toArray()) {
    const modality = String(row.modality);
    const part = parts.get(modality) ?? { ids: [], chunks: [] };
    part.ids.push(String(row.id));
    part.chunks.push((row.embedding as { toArray(): Float32Array }).toArray());
    parts.set(modality, part);
  }
  const out = new Map<string, EmbeddingMatrix>();
  for (const [modality, { ids, chunks }] of parts) {
    const values = new Float32Array(ids.length * dim);
    chunks.forEach((chunk, i) => values.set(chunk, i * dim));
    out.set(modality, EmbeddingMatrix.of(ids, values, dim));
  }
  return out;
}
