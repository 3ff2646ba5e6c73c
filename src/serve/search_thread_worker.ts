// The search thread's side of search_thread.ts: opens the index, then answers each call with a
// LocalSearch (the same batching and JSON as on one thread). Calls run as they arrive; the batcher
// gathers the searches that arrive together, here as on the main thread.
import { parentPort, workerData } from 'node:worker_threads';
import { SearchIndex } from '../index/index.js';
import { setNumThreads } from '../engine/index.js';
import { LocalSearch } from './search_service.js';
import type { SearchThreadOptions, ThreadAnswer, ThreadCall, ThreadError, ThreadStart } from './search_thread.js';

const port = parentPort!;
const options = workerData as Required<Omit<SearchThreadOptions, 'onSkip'>>;

const errorOf = (error: unknown): ThreadError =>
  error instanceof Error ? { name: error.name, message: error.message } : { name: 'Error', message: String(error) };
const tell = (message: ThreadStart): void => port.postMessage(message);

// OpenMP's thread count is a per-thread setting: this thread sets its own.
setNumThreads(options.threads);
// Without a listener the thread ends once it has told why the index did not open.
try {
  serve(await SearchIndex.open({ ...options.open, onSkip: (message) => tell({ kind: 'skip', message }) }));
} catch (error) {
  tell({ kind: 'failed', error: errorOf(error) });
}

function serve(index: SearchIndex): void {
  const search = new LocalSearch(index, options.batching);
  const methods: Record<ThreadCall['method'], (...args: never[]) => Promise<unknown>> = {
    search: (...args: Parameters<LocalSearch['search']>) => search.search(...args),
    embed: (...args: Parameters<LocalSearch['embed']>) => search.embed(...args),
    item: (...args: Parameters<LocalSearch['item']>) => search.item(...args),
    count: () => search.count(),
    close: () => index.close(),
  };
  port.on('message', ({ id, method, args }: ThreadCall) => {
    methods[method](...(args as never[])).then(
      (value) => port.postMessage({ id, value } satisfies ThreadAnswer),
      (error: unknown) => port.postMessage({ id, error: errorOf(error) } satisfies ThreadAnswer),
    );
  });
  tell({ kind: 'ready', provenance: index.provenance });
}
