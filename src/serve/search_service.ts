// What the HTTP server asks of an index, and the index answering it on the server's own thread.
// The server's routes call a SearchService; `LocalSearch` is an open SearchIndex with the query
// batcher in front of it and the answers' JSON made here. `byol-align serve` runs that same
// LocalSearch on a thread of its own (search_thread.ts), so that the HTTP work and the batches'
// compute use both cores.
import {
  type IndexedItem,
  type IndexProvenance,
  type RowHit,
  type SearchIndex,
  type SearchOptions,
  type SearchQuery,
  type StoredRow,
} from '../index/index.js';
import { QueryBatcher, type QueryBatcherOptions } from './query_batcher.js';

export interface SearchService {
  /** Which checkpoint and space made the index. */
  readonly provenance: IndexProvenance;
  /** A search's answer as JSON text, `{"results":[{"hits":[...]}, ...]}` (one list per query), searched with the other callers' queries. */
  search(queries: readonly SearchQuery[], options?: SearchOptions): Promise<string>;
  /** The l2-normalised embeddings of `queries`, embedded with the other callers' queries. */
  embed(queries: readonly SearchQuery[]): Promise<Float32Array[]>;
  /** The row with this id, or undefined. */
  item(id: string): Promise<IndexedItem | undefined>;
  /** Rows in the index. */
  count(): Promise<number>;
}

/**
 * An open index served on this thread.
 *
 * @example
 * const search = new LocalSearch(await SearchIndex.open({ db: 'icons.lance' }));
 * const json = await search.search([{ text: 'a red heart' }], { k: 5 });
 */
export class LocalSearch implements SearchService {
  private readonly batcher: QueryBatcher;
  private readonly answers = new SearchAnswerJson();

  constructor(
    readonly index: SearchIndex,
    batching: QueryBatcherOptions = {},
  ) {
    this.batcher = new QueryBatcher(index, batching);
  }

  get provenance(): IndexProvenance {
    return this.index.provenance;
  }

  async search(queries: readonly SearchQuery[], options: SearchOptions = {}): Promise<string> {
    return this.answers.of(await this.batcher.search(queries, options));
  }

  embed(queries: readonly SearchQuery[]): Promise<Float32Array[]> {
    return this.batcher.embed(queries);
  }

  item(id: string): Promise<IndexedItem | undefined> {
    return this.index.item(id);
  }

  count(): Promise<number> {
    return this.index.count();
  }
}

/** What a client sees of a row: never the file path of its media, only the URL that serves it. */
export function publicItem({ media, ...row }: IndexedItem): Omit<IndexedItem, 'media'> & { mediaUrl: string | null } {
  return { ...row, mediaUrl: media === null ? null : `/v1/items/${encodeURIComponent(row.id)}/media` };
}

/**
 * The JSON of a search's answer, written here rather than by the route's serializer: each row's
 * part (what publicItem shows, in the schema's order) is made once and kept while the row is, and
 * the rows held in memory are the same objects in every answer (bench/RESULTS.md: a tenth of a
 * loaded server's time went to making and serialising the hits' objects).
 */
class SearchAnswerJson {
  readonly #rows = new WeakMap<StoredRow, string>();

  of(results: RowHit[][]): string {
    const hits = (list: RowHit[]): string =>
      list.map(({ rank, score, row }) => `{"rank":${rank},"score":${JSON.stringify(score)},${this.#row(row)}}`).join(',');
    return `{"results":[${results.map((list) => `{"hits":[${hits(list)}]}`).join(',')}]}`;
  }

  #row(row: StoredRow): string {
    let json = this.#rows.get(row);
    if (json === undefined) {
      const { id, item, modality, text, mediaUrl, metadata } = publicItem({
        ...row,
        metadata: JSON.parse(row.metadata) as Record<string, unknown>,
      });
      // Without its braces, to sit after rank and score.
      json = JSON.stringify({ id, item, modality, text, mediaUrl, metadata }).slice(1, -1);
      this.#rows.set(row, json);
    }
    return json;
  }
}
