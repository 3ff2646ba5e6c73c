// Gathers the searches of requests that arrive together into one batch: one embedding pass for all
// their queries and one matrix product and top-k per modality (SearchIndex.searchMany), then each
// request gets its own hits. Per query, an exact in-memory search of a large index is a product of
// one row against every row; fifty rows cost little more than one (docs/search.md, "Batching").
import type { SearchHit, SearchIndex, SearchOptions, SearchQuery, SearchRequest } from '../index/index.js';

export interface QueryBatcherOptions {
  /** How long the first query of a batch waits for others before the batch runs, in ms (default 2). */
  maxWaitMs?: number;
  /** A batch runs as soon as this many queries wait (default 64); 1 runs every request alone. */
  maxQueries?: number;
}

/**
 * 2 ms: small beside the tens of ms a loaded server answers in, long enough for the requests that
 * a burst of connections sent together to be parsed and join one batch.
 */
export const DEFAULT_BATCH_WAIT_MS = 2;
/** 64: one request's most queries; a batch's scores against 100,000 rows are then 26 MB. */
export const DEFAULT_BATCH_QUERIES = 64;

interface Waiting {
  request: SearchRequest;
  resolve: (hits: SearchHit[][]) => void;
  reject: (error: unknown) => void;
}

/**
 * Searches of concurrent callers, run together. A search with a metadata filter is LanceDB's scan,
 * one query at a time whatever the batch, so it goes to the index at once.
 *
 * @example
 * const batcher = new QueryBatcher(index, { maxWaitMs: 2, maxQueries: 64 });
 * const [a, b] = await Promise.all([batcher.search([{ text: 'a heart' }]), batcher.search([{ text: 'a star' }], { k: 5 })]);
 */
export class QueryBatcher {
  private readonly maxWaitMs: number;
  private readonly maxQueries: number;
  private waiting: Waiting[] = [];
  private waitingQueries = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly index: Pick<SearchIndex, 'search' | 'searchMany'>,
    options: QueryBatcherOptions = {},
  ) {
    this.maxWaitMs = options.maxWaitMs ?? DEFAULT_BATCH_WAIT_MS;
    this.maxQueries = options.maxQueries ?? DEFAULT_BATCH_QUERIES;
    if (!Number.isFinite(this.maxWaitMs) || this.maxWaitMs < 0)
      throw new RangeError(`QueryBatcher: maxWaitMs must be a number ≥ 0, got ${this.maxWaitMs}`);
    if (!Number.isInteger(this.maxQueries) || this.maxQueries < 1)
      throw new RangeError(`QueryBatcher: maxQueries must be an integer ≥ 1, got ${this.maxQueries}`);
  }

  /** What `index.search(queries, options)` answers, searched together with the other callers' queries. */
  search(queries: readonly SearchQuery[], options: SearchOptions = {}): Promise<SearchHit[][]> {
    if (Object.keys(options.where ?? {}).length > 0) return this.index.search(queries, options);
    return new Promise((resolve, reject) => {
      this.waiting.push({ request: { queries, options }, resolve, reject });
      this.waitingQueries += queries.length;
      if (this.waitingQueries >= this.maxQueries) this.runWaiting();
      else this.timer ??= setTimeout(() => this.runWaiting(), this.maxWaitMs);
    });
  }

  private runWaiting(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.waiting;
    this.waiting = [];
    this.waitingQueries = 0;
    void this.run(batch);
  }

  private async run(batch: Waiting[]): Promise<void> {
    let results: SearchHit[][][];
    try {
      results = await this.index.searchMany(batch.map((w) => w.request));
    } catch (error) {
      if (batch.length === 1) return batch[0]!.reject(error);
      // One bad query (an image that does not decode) fails the whole batch: each search then runs
      // alone, so it gets its own answer or its own error, as without batching.
      for (const { request, resolve, reject } of batch) this.index.search(request.queries, request.options).then(resolve, reject);
      return;
    }
    batch.forEach((w, i) => w.resolve(results[i]!));
  }
}
