// Gathers the searches of requests that arrive together into one batch: one embedding pass for all
// their queries and one matrix product and top-k per modality (SearchIndex.searchRows), then each
// request gets its own hits; the inputs of embedding requests likewise share one forward pass. Per query, an exact in-memory search of a large index is a product of
// one row against every row; fifty rows cost little more than one (docs/search.md, "Batching").
import type { RowHit, SearchIndex, SearchOptions, SearchQuery, SearchRequest } from '../index/index.js';

export interface QueryBatcherOptions {
  /**
   * How long the first query of a batch waits for others before the batch runs, at most, in ms
   * (default 10); a batch runs sooner once the callers that the last batch answered are back.
   */
  maxWaitMs?: number;
  /** A batch runs as soon as this many queries wait (default 64); 1 runs every request alone. */
  maxQueries?: number;
}

/**
 * 10 ms: long enough for 50 connections answered together to send their next requests (their
 * client reads the answers one by one) and join one batch; a request that misses its wave waits a
 * whole batch (about 22 ms for 50 text searches here). At 50 connections, nine rounds of each
 * alternating, p99 was 31–38 ms with 10 against 29–44 ms with 5, and the slowest answer 32–39 ms
 * against 31–54 ms (bench/RESULTS.md). A batch waits for it only while some of the callers it
 * expects are not back.
 */
export const DEFAULT_BATCH_WAIT_MS = 10;
/** 64: one request's most queries; a batch's scores against 100,000 rows are then 26 MB. */
export const DEFAULT_BATCH_QUERIES = 64;

interface Waiting<R, A> {
  request: R;
  resolve: (answer: A) => void;
  reject: (error: unknown) => void;
}

/**
 * Requests of concurrent callers, run together: `runMany` answers a batch of requests in order,
 * `runOne` one request alone (what each request of a failed batch falls back to).
 */
class RequestBatcher<R, A> {
  private waiting: Waiting<R, A>[] = [];
  private waitingQueries = 0;
  private timer: NodeJS.Timeout | undefined;
  /** Whether a batch is in flight: the next one waits for it to end. */
  private running = false;
  /**
   * The queries the next batch expects: those that waited when the last batch ended and those it
   * answered, whose callers are expected back with their next requests (none before a first batch).
   */
  private expected = Infinity;

  constructor(
    private readonly runMany: (requests: R[]) => Promise<A[]>,
    private readonly runOne: (request: R) => Promise<A>,
    private readonly queriesOf: (request: R) => number,
    private readonly maxWaitMs: number,
    private readonly maxQueries: number,
  ) {}

  submit(request: R): Promise<A> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ request, resolve, reject });
      this.waitingQueries += this.queriesOf(request);
      // While a batch runs, requests gather for the next: its compute holds the thread that would
      // run a second one, and a timer started now would cut a wave of requests into small batches.
      if (this.running) return;
      // Callers that keep several requests open send the next as each answer comes back: the batch
      // runs once they are all back (the wave whole), or after maxWaitMs for one that is not.
      if (this.full()) this.runWaiting();
      else this.timer ??= setTimeout(() => this.runWaiting(), this.maxWaitMs);
    });
  }

  /** Whether the next batch need not wait: maxQueries queries wait, or all that it expects. */
  private full(): boolean {
    return this.waitingQueries >= Math.min(this.maxQueries, this.expected);
  }

  /** Runs the requests that wait, up to maxQueries queries (at least one request); the rest after it. */
  private runWaiting(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    let count = 0;
    let queries = 0;
    while (count < this.waiting.length && (count === 0 || queries + this.queriesOf(this.waiting[count]!.request) <= this.maxQueries))
      queries += this.queriesOf(this.waiting[count++]!.request);
    const batch = this.waiting.splice(0, count);
    this.waitingQueries -= queries;
    this.running = true;
    void this.run(batch).finally(() => {
      this.running = false;
      // The callers just answered send their next requests now: those that gathered meanwhile wait
      // for them (cut at once, a wave becomes two small batches), as long as the first of a batch waits.
      if (this.full()) this.runWaiting();
      else if (this.waiting.length > 0) this.timer ??= setTimeout(() => this.runWaiting(), this.maxWaitMs);
    });
  }

  private async run(batch: Waiting<R, A>[]): Promise<void> {
    let answers: A[];
    try {
      answers = await this.runMany(batch.map((w) => w.request));
    } catch (error) {
      this.expectBack(batch);
      if (batch.length === 1) return batch[0]!.reject(error);
      // One bad query (an image that does not decode) fails the whole batch: each request then runs
      // alone, so it gets its own answer or its own error, as without batching.
      for (const { request, resolve, reject } of batch) this.runOne(request).then(resolve, reject);
      return;
    }
    this.expectBack(batch);
    batch.forEach((w, i) => w.resolve(answers[i]!));
  }

  /** Before a batch's callers hear back (they may ask again at once): the next batch expects them and those waiting now. */
  private expectBack(batch: Waiting<R, A>[]): void {
    this.expected = this.waitingQueries + batch.reduce((sum, w) => sum + this.queriesOf(w.request), 0);
  }
}

/**
 * Searches and embeddings of concurrent callers, each kind run together. A search with a metadata
 * filter is LanceDB's scan, one query at a time whatever the batch, so it goes to the index at once.
 *
 * @example
 * const batcher = new QueryBatcher(index, { maxWaitMs: 2, maxQueries: 64 });
 * const [a, b] = await Promise.all([batcher.search([{ text: 'a heart' }]), batcher.search([{ text: 'a star' }], { k: 5 })]);
 * const [vectors] = await Promise.all([batcher.embed([{ text: 'a moon' }]), batcher.embed([{ text: 'a sun' }])]);
 */
export class QueryBatcher {
  private readonly searches: RequestBatcher<SearchRequest, RowHit[][]>;
  private readonly embeddings: RequestBatcher<readonly SearchQuery[], Float32Array[]>;

  constructor(
    private readonly index: Pick<SearchIndex, 'searchRows' | 'embed'>,
    options: QueryBatcherOptions = {},
  ) {
    const maxWaitMs = options.maxWaitMs ?? DEFAULT_BATCH_WAIT_MS;
    const maxQueries = options.maxQueries ?? DEFAULT_BATCH_QUERIES;
    if (!Number.isFinite(maxWaitMs) || maxWaitMs < 0)
      throw new RangeError(`QueryBatcher: maxWaitMs must be a number ≥ 0, got ${maxWaitMs}`);
    if (!Number.isInteger(maxQueries) || maxQueries < 1)
      throw new RangeError(`QueryBatcher: maxQueries must be an integer ≥ 1, got ${maxQueries}`);
    this.searches = new RequestBatcher(
      (requests) => index.searchRows(requests),
      async (request) => (await index.searchRows([request]))[0]!,
      (request) => request.queries.length,
      maxWaitMs,
      maxQueries,
    );
    // One forward pass per modality for every caller's inputs, then each caller's share of the rows.
    this.embeddings = new RequestBatcher(
      async (lists) => {
        const vectors = await index.embed(lists.flat());
        let at = 0;
        return lists.map((list) => vectors.slice(at, (at += list.length)));
      },
      (list) => index.embed(list),
      (list) => list.length,
      maxWaitMs,
      maxQueries,
    );
  }

  /** What `index.search(queries, options)` answers (each hit with its stored row), searched together with the other callers' queries. */
  async search(queries: readonly SearchQuery[], options: SearchOptions = {}): Promise<RowHit[][]> {
    if (Object.keys(options.where ?? {}).length > 0) return (await this.index.searchRows([{ queries, options }]))[0]!;
    return this.searches.submit({ queries, options });
  }

  /** What `index.embed(queries)` answers, embedded together with the other callers' queries. */
  embed(queries: readonly SearchQuery[]): Promise<Float32Array[]> {
    return this.embeddings.submit(queries);
  }
}
