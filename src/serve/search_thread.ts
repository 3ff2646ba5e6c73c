// The index served from a thread of its own (node:worker_threads): `byol-align serve` parses
// requests and writes answers on the main thread while another thread embeds the queries, searches
// and makes the answers' JSON (a LocalSearch, search_service.ts, in search_thread_worker.ts). On one
// thread the two took turns: a batch's forward pass and search held the thread that parses the
// next requests (bench/RESULTS.md, issue 14). Each call is one message each way; errors come back
// by name and message, and the index's own errors (a bad query, a checkpoint that does not match)
// keep their classes, so the server answers them as it answers them on one thread.
import { Worker } from 'node:worker_threads';
import { CheckpointMismatchError, IndexQueryError, type IndexedItem, type IndexProvenance, type OpenIndexOptions } from '../index/index.js';
import type { SearchOptions, SearchQuery } from '../index/index.js';
import type { QueryBatcherOptions } from './query_batcher.js';
import type { SearchService } from './search_service.js';

/** What the thread opens: the index's options (less the callback), its batching and its libtorch threads. */
export interface SearchThreadOptions {
  open: Omit<OpenIndexOptions, 'onSkip'>;
  batching?: QueryBatcherOptions;
  /** libtorch's intra-op threads on the search thread (default 1). */
  threads?: number;
  /** Told about each broken checkpoint skipped while opening (OpenIndexOptions.onSkip). */
  onSkip?: (message: string) => void;
}

/** A call to the thread, and its answer. */
export interface ThreadCall {
  id: number;
  method: 'search' | 'embed' | 'item' | 'count' | 'close';
  args: unknown[];
}
export type ThreadAnswer = { id: number; value: unknown } | { id: number; error: ThreadError };
/** What the thread says once the index is open, or why it could not open it. */
export type ThreadStart =
  | { kind: 'skip'; message: string }
  | { kind: 'ready'; provenance: IndexProvenance }
  | { kind: 'failed'; error: ThreadError };

export interface ThreadError {
  name: string;
  message: string;
}

/** An error of the thread as the caller's thread throws it: the index's error classes kept. */
function rebuilt({ name, message }: ThreadError): Error {
  if (name === 'IndexQueryError') return new IndexQueryError(message);
  if (name === 'CheckpointMismatchError') return new CheckpointMismatchError(message);
  const error = new Error(message);
  error.name = name;
  return error;
}

/**
 * @example
 * const search = await SearchThread.start({ open: { db: 'icons.lance' } });
 * const json = await search.search([{ text: 'a red heart' }], { k: 5 });
 * await search.close();
 */
export class SearchThread implements SearchService {
  private readonly pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  private nextId = 0;
  /** Why the thread stopped, once it has. */
  private stopped: Error | undefined;

  private constructor(
    private readonly worker: Worker,
    readonly provenance: IndexProvenance,
  ) {
    worker.on('message', (answer: ThreadAnswer) => {
      const call = this.pending.get(answer.id);
      if (call === undefined) return;
      this.pending.delete(answer.id);
      if ('error' in answer) call.reject(rebuilt(answer.error));
      else call.resolve(answer.value);
    });
    const stop = (error: Error): void => {
      this.stopped ??= error;
      for (const call of this.pending.values()) call.reject(this.stopped);
      this.pending.clear();
    };
    worker.on('error', (error) => stop(new Error(`the search thread failed: ${error.message}`)));
    worker.on('exit', (code) => stop(new Error(`the search thread exited (code ${code})`)));
  }

  /** Starts the thread and resolves once it has opened the index (or rejects with why it could not). */
  static start(options: SearchThreadOptions): Promise<SearchThread> {
    const worker = new Worker(new URL('./search_thread_worker.js', import.meta.url), {
      workerData: { open: options.open, batching: options.batching ?? {}, threads: options.threads ?? 1 },
    });
    return new Promise((resolve, reject) => {
      const failed = (error: Error): void => {
        void worker.terminate();
        reject(error);
      };
      const onStart = (message: ThreadStart): void => {
        if (message.kind === 'skip') return options.onSkip?.(message.message);
        worker.off('message', onStart);
        worker.off('error', failed);
        if (message.kind === 'ready') resolve(new SearchThread(worker, message.provenance));
        else failed(rebuilt(message.error));
      };
      worker.on('message', onStart);
      worker.once('error', failed);
    });
  }

  search(queries: readonly SearchQuery[], options: SearchOptions = {}): Promise<string> {
    return this.call('search', [queries, options]) as Promise<string>;
  }

  embed(queries: readonly SearchQuery[]): Promise<Float32Array[]> {
    return this.call('embed', [queries]) as Promise<Float32Array[]>;
  }

  item(id: string): Promise<IndexedItem | undefined> {
    return this.call('item', [id]) as Promise<IndexedItem | undefined>;
  }

  count(): Promise<number> {
    return this.call('count', []) as Promise<number>;
  }

  /** Closes the index (after the calls in flight) and ends the thread. */
  async close(): Promise<void> {
    if (this.stopped === undefined) await this.call('close', []);
    await this.worker.terminate();
  }

  private call(method: ThreadCall['method'], args: unknown[]): Promise<unknown> {
    if (this.stopped !== undefined) return Promise.reject(this.stopped);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ id, method, args } satisfies ThreadCall);
    });
  }
}
