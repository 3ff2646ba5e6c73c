// `npm run bench -- serve`: requests per second and latency of `byol-align serve` answering text
// queries for images (POST /v1/search, query embedding included) over loopback, at 1 and 50
// concurrent connections, with the searches of concurrent requests batched (the default) and one
// request at a time (--batch-queries 1), each line after a warm-up at its concurrency and run
// --rounds times back to back on the same connections (default 3), with the rounds' median; beside each,
// the recall@10 of what it answered against exact search by brute force here (float32 query
// embeddings from POST /v1/embed, every image scored). What it needs is made when missing: the
// icon data set, a short training run (unless --run or BYOL_ALIGN_BENCH_RUN names one) and the
// index of the icon training split, both modalities (all of it, or its first --items images and
// their captions).
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import '../src/index/lance_log.js';
import { libtorchVersion } from '../src/index.js';
import { ensureIconData } from './align.js';
import { machineDescription, median } from './measure.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const CLI = path.join(here, '..', 'src', 'cli', 'main.js');
const K = 10;

export interface ServeBenchOptions {
  /** libtorch's intra-op threads in training and indexing, and in one server measured beside serve's default of 1. */
  threads: number;
  /** A trained run (default: BYOL_ALIGN_BENCH_RUN, else `work`/run, trained when missing). */
  run?: string;
  /** Index only the first N images of the training split and their captions (default: all of it). */
  items?: number;
  /** Requests per load test, at most (default 5000). */
  requests?: number;
  /** Seconds per load test, at most (default 20). */
  seconds?: number;
  /** Concurrent connections of each load test (default 1 and 50). */
  connections?: number[];
  /** Distinct text queries, captions of the icon test split (default 500). */
  queries?: number;
  /** Steps of the run trained when there is none (default 200). */
  trainSteps?: number;
  /**
   * Load tests per line, back to back, each printed, then their median (default 3): p99 at 50
   * connections moved by ±10 ms between runs of the same server here (bench/RESULTS.md, 2026-12-04).
   */
  rounds?: number;
  /** The icon data set (default data/icons; built there when missing). */
  dataDir?: string;
  /** Where the trained run, the subsets and the indexes go (default data/bench-serve). */
  work?: string;
}

/** The part of autocannon's API used here (it ships no types). */
interface Autocannon {
  (
    options: {
      url: string;
      connections: number;
      duration: number;
      timeout: number;
      requests: {
        method: string;
        path: string;
        headers: Record<string, string>;
        body: string;
        onResponse: (status: number, body: string, context: { sentAt?: number }) => void;
        setupRequest: (request: object, context: { sentAt?: number }) => object;
      }[];
      setupClient: (client: { setRequests(requests: unknown[]): void }) => void;
    },
    done: (error: Error | null) => void,
  ): { on(event: 'reqError', listener: () => void): void; stop(): void };
}

/**
 * Seconds of load, not counted, before each line's rounds: a fresh server's first batches run cold
 * (the JavaScript not yet compiled, libtorch's first allocations), as a load test's warm-up allows for.
 */
const WARM_UP_S = 2;

/** What one round of a load test answered: each answer's body q and its text, latencies in ms, seconds taken. */
interface LoadRound {
  answers: [number, string][];
  latencies: number[];
  elapsed: number;
  errors: number;
  non2xx: number;
}

/**
 * Searches (the bodies in turn) over `conns` connections, each connection starting at another query
 * so that a batch holds different ones: WARM_UP_S seconds not counted, then `rounds` rounds back to
 * back of `count` answers or `seconds` each, whichever comes first, all on the same connections.
 * A round's latencies and rate are its answers', from request to answer; its rate is counted
 * from its start to its last answer (autocannon's own `duration` ends at its first 1 s tick after
 * the last answer: 5,000 answers in 4.05 s read as 5.0 s).
 *
 * One set of connections for the warm-up and the rounds, because autocannon opens a load's
 * connections one after another in one synchronous loop (about 40 ms for 50): the first request of
 * each, written meanwhile, leaves only when all are open, and a fresh load's first 50 answers took
 * 45–152 ms where the server's own clock had them answered in 27 ms. Out of 5,000 they are 1%, and
 * p99 measured them (bench/RESULTS.md, 2026-12-04).
 */
async function loadTest(
  url: string,
  conns: number,
  bodies: readonly string[],
  rounds: number,
  count: number,
  seconds: number,
): Promise<LoadRound[]> {
  // A devDependency, and CommonJS without types: loaded only by this benchmark.
  const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;
  const done: LoadRound[] = [];
  let round: LoadRound | undefined;
  let roundStart = 0;
  const startRound = (now: number): LoadRound => {
    roundStart = now;
    return { answers: [], latencies: [], elapsed: 0, errors: 0, non2xx: 0 };
  };
  const warmUpEnd = performance.now() + WARM_UP_S * 1000;
  let tracker: ReturnType<Autocannon> | undefined;
  const finished = new Promise<void>((resolve, reject) => {
    const list = bodies.map((body, q) => ({
      method: 'POST',
      path: '/v1/search',
      headers: { 'content-type': 'application/json' },
      body,
      // Called as each request is written; one request at a time per connection, so its context holds it.
      setupRequest: (request: object, context: { sentAt?: number }) => {
        context.sentAt = performance.now();
        return request;
      },
      onResponse: (status: number, answer: string, context: { sentAt?: number }) => {
        const now = performance.now();
        if (done.length === rounds) return; // in flight when the load stopped
        if (round === undefined) {
          if (now < warmUpEnd) return;
          round = startRound(now);
          return;
        }
        round.latencies.push(now - context.sentAt!);
        if (status === 200) round.answers.push([q, answer]);
        else round.non2xx++;
        round.elapsed = (now - roundStart) / 1000;
        if (round.latencies.length < count && round.elapsed < seconds) return;
        done.push(round);
        round = startRound(now);
        if (done.length === rounds) tracker!.stop();
      },
    }));
    let client = 0;
    tracker = autocannon(
      {
        url,
        connections: conns,
        // A bound only: the load stops when its last round ends.
        duration: WARM_UP_S + rounds * seconds + 10,
        timeout: 30,
        requests: list,
        setupClient: (c) => {
          const from = Math.floor((client++ * list.length) / conns);
          c.setRequests([...list.slice(from), ...list.slice(0, from)]);
        },
      },
      (error) => (error === null ? resolve() : reject(error)),
    );
    tracker.on('reqError', () => {
      if (round !== undefined) round.errors++;
    });
  });
  await finished;
  if (done.length < rounds)
    throw new Error(`load test at ${conns} connections: ${done.length} of ${rounds} rounds ended before autocannon stopped`);
  return done;
}

/** The `q` quantile of `values` (sorted here), the nearest rank. */
function quantile(values: number[], q: number): number {
  const sorted = Float64Array.from(values).sort();
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
}

/** The manifest to index: the training split, or its first `items` images with their captions. */
function trainingManifest(dataDir: string, work: string, items: number | undefined): string {
  const full = path.join(dataDir, 'captions_train.json');
  if (items === undefined) return full;
  const subset = path.join(work, `captions_train_first${items}.json`);
  if (existsSync(subset)) return subset;
  const coco = JSON.parse(readFileSync(full, 'utf8')) as { images: { id: number }[]; annotations: { image_id: number }[] };
  const images = coco.images.slice(0, items);
  const ids = new Set(images.map((i) => i.id));
  writeFileSync(subset, JSON.stringify({ ...coco, images, annotations: coco.annotations.filter((a) => ids.has(a.image_id)) }));
  return subset;
}

/**
 * A short run trained on the whole training split into `work`/run, when it has no checkpoint yet
 * (the model's size, not its quality, sets the cost measured here).
 */
function trainedRun(
  options: Required<Pick<ServeBenchOptions, 'threads' | 'trainSteps'>>,
  work: string,
  manifest: string,
  images: string,
): string {
  const run = path.join(work, 'run');
  if (existsSync(path.join(run, 'checkpoints'))) return run;
  console.log(`training a ${options.trainSteps}-step run in ${run} (pass --run RUN to serve another) ...`);
  execFileSync(
    process.execPath,
    [
      CLI,
      'train',
      '--preset',
      'cpu-small',
      '--data',
      `coco:${manifest}`,
      '--images',
      images,
      '--out',
      run,
      '--steps',
      String(options.trainSteps),
      '--threads',
      String(options.threads),
      '-q',
    ],
    { stdio: 'inherit' },
  );
  return run;
}

/** `byol-align serve` in a child process on a free loopback port; resolves once it listens. */
async function startServer(db: string, flags: string[]): Promise<{ url: string; stop: () => Promise<void> }> {
  const child = spawn(process.execPath, [CLI, 'serve', '--db', db, '--port', '0', ...flags], {
    stdio: ['ignore', 'inherit', 'pipe'],
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  let stderr = '';
  const url = await new Promise<string>((resolve, reject) => {
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      const listening = /listening on (http:\/\/\S+)/.exec(stderr);
      if (listening) resolve(listening[1]!);
    });
    void exited.then((code) => reject(new Error(`byol-align serve exited with ${code} before listening:\n${stderr}`)));
  });
  return {
    url,
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/** Distinct captions of the icon test split, evenly spread over it. */
export function queryTexts(dataDir: string, count: number): string[] {
  const coco = JSON.parse(readFileSync(path.join(dataDir, 'captions_test.json'), 'utf8')) as { annotations: { caption: string }[] };
  const captions = [...new Set(coco.annotations.map((a) => a.caption))];
  const step = Math.max(1, Math.floor(captions.length / count));
  return captions.filter((_, i) => i % step === 0).slice(0, count);
}

/** The indexed images' unit embeddings, one row each, by brute force the exact answer to any query. */
async function imageRows(
  db: string,
): Promise<{ ids: string[]; at: Map<string, number>; values: Float32Array; dim: number; rows: number; texts: number }> {
  // Imported here, as src/index/table.ts does, so that `bench align` runs where @lancedb/lancedb is
  // not installed (scripts/gpu-check/: it is too big to carry to a GPU machine).
  const lancedb = await import('@lancedb/lancedb');
  const connection = await lancedb.connect(db);
  try {
    const table = await connection.openTable('items');
    const found = await table.query().where("modality = 'image'").select(['id', 'embedding']).toArray();
    const dim = (found[0]!.embedding as { length: number }).length;
    const values = new Float32Array(found.length * dim);
    found.forEach((row: Record<string, unknown>, i: number) =>
      values.set((row.embedding as { toArray(): Float32Array }).toArray(), i * dim),
    );
    const ids = found.map((row: Record<string, unknown>) => String(row.id));
    return {
      ids,
      at: new Map(ids.map((id: string, i: number) => [id, i])),
      values,
      dim,
      rows: await table.countRows(),
      texts: await table.countRows("modality = 'text'"),
    };
  } finally {
    connection.close();
  }
}

/** The true score of every image for `query`, and the 10th best of them. */
function exactScores(images: { values: Float32Array; dim: number }, query: Float32Array): { scores: Float32Array; tenth: number } {
  const n = images.values.length / images.dim;
  const scores = new Float32Array(n);
  for (let r = 0; r < n; r++) {
    let s = 0;
    for (let j = 0, o = r * images.dim; j < images.dim; j++) s += query[j]! * images.values[o + j]!;
    scores[r] = s;
  }
  const tenth = Float32Array.from(scores).sort().at(-Math.min(K, n))!;
  return { scores, tenth };
}

export async function benchServe(options: ServeBenchOptions): Promise<void> {
  const { threads, items, requests = 5000, seconds = 20, connections = [1, 50], queries = 500, trainSteps = 200, rounds = 3 } = options;
  const dataDir = options.dataDir ?? 'data/icons';
  const work = options.work ?? 'data/bench-serve';
  console.log(`serve benchmark on ${machineDescription()}; libtorch ${libtorchVersion}`);

  ensureIconData(dataDir);
  mkdirSync(work, { recursive: true });
  const images = path.join(dataDir, 'images');
  const manifest = trainingManifest(dataDir, work, items);
  const run =
    options.run ??
    (process.env.BYOL_ALIGN_BENCH_RUN || undefined) ??
    trainedRun({ threads, trainSteps }, work, path.join(dataDir, 'captions_train.json'), images);
  const db = path.join(work, `index-${path.basename(path.resolve(run))}-${items ?? 'all'}`);
  console.log(`indexing ${manifest} with ${run} into ${db} (new or changed rows only) ...`);
  execFileSync(
    process.execPath,
    [
      CLI,
      'index',
      '--checkpoint',
      run,
      '--data',
      `coco:${manifest}`,
      '--images',
      images,
      '--db',
      db,
      '--rebuild',
      '--threads',
      String(threads),
    ],
    { stdio: 'inherit' },
  );

  const exact = await imageRows(db);
  const texts = queryTexts(dataDir, queries);
  const bodies = texts.map((text) => JSON.stringify({ query: { text }, k: K, modality: 'image' }));
  console.log(
    `index: ${exact.rows} rows (${exact.ids.length} images, ${exact.texts} captions) of width ${exact.dim}; ` +
      `${texts.length} caption queries of the test split for the ${K} nearest images; ≤ ${requests} requests and ≤ ${seconds} s per line, after ${WARM_UP_S} s not counted`,
  );

  // serve's defaults: one process of one libtorch thread; beside them, float32 alone (--exact: the
  // default's bfloat16 first pass off), queries embedded in bfloat16 (--bf16-queries), one process
  // of `threads` threads (where more than one), two processes, and no batching.
  const modes = [
    { name: 'batched (defaults, 1 thread)', flags: [] },
    { name: 'batched, --exact', flags: ['--exact'] },
    { name: 'batched, --bf16-queries', flags: ['--bf16-queries'] },
    ...(threads > 1 ? [{ name: `batched, ${threads} threads`, flags: ['--threads', String(threads)] }] : []),
    { name: 'batched, 2 workers × 1 thread', flags: ['--workers', '2'] },
    { name: 'one request at a time', flags: ['--batch-queries', '1'] },
  ];
  let truth: { scores: Float32Array; tenth: number }[] | undefined;
  console.log(`${'searches'.padEnd(30)} conns round  answered   req/s  p50 ms  p99 ms  errors  non-2xx  recall@${K}`);
  for (const mode of modes) {
    const server = await startServer(db, mode.flags);
    try {
      // The exact answers: each query embedded alone (POST /v1/embed), then every image scored here.
      truth ??= await Promise.all(
        texts.map(async (text) => {
          const r = await fetch(`${server.url}/v1/embed`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ inputs: [{ text }] }),
          });
          if (!r.ok) throw new Error(`POST /v1/embed: ${r.status} ${await r.text()}`);
          return Float32Array.from(((await r.json()) as { embeddings: number[][] }).embeddings[0]!);
        }),
      ).then((vectors) => vectors.map((v) => exactScores(exact, v)));
      for (const conns of connections) {
        // The answers are kept and checked after the load: parsing them as they come would add the
        // check's time to the load generator's, on the cores that the server shares.
        const measured: { rate: number; p50: number; p99: number }[] = [];
        for (const [i, result] of (await loadTest(server.url, conns, bodies, rounds, requests, seconds)).entries()) {
          let found = 0;
          for (const [q, body] of result.answers) {
            // A hit is right when it is among the true 10 nearest, or ties with the 10th.
            const { scores, tenth } = truth![q]!;
            const hits = (JSON.parse(body) as { results: { hits: { id: string }[] }[] }).results[0]!.hits;
            for (const { id } of hits) {
              const row = exact.at.get(id);
              if (row !== undefined && scores[row]! >= tenth - 1e-5) found++;
            }
          }
          const recall = result.answers.length === 0 ? NaN : found / (K * result.answers.length);
          const rate = result.latencies.length / result.elapsed;
          const p50 = quantile(result.latencies, 0.5);
          const p99 = quantile(result.latencies, 0.99);
          measured.push({ rate, p50, p99 });
          console.log(
            `${mode.name.padEnd(30)} ${String(conns).padStart(5)} ${String(i + 1).padStart(5)} ${String(result.answers.length).padStart(9)} ${rate.toFixed(0).padStart(7)} ` +
              `${p50.toFixed(1).padStart(7)} ${p99.toFixed(1).padStart(7)} ${String(result.errors).padStart(7)} ` +
              `${String(result.non2xx).padStart(8)}  ${recall.toFixed(3)}`,
          );
        }
        if (rounds > 1) {
          const middle = (key: 'rate' | 'p50' | 'p99'): number => median(measured.map((m) => m[key]));
          console.log(
            `${mode.name.padEnd(30)} ${String(conns).padStart(5)} ${'med.'.padStart(5)} ${''.padStart(9)} ${middle('rate').toFixed(0).padStart(7)} ` +
              `${middle('p50').toFixed(1).padStart(7)} ${middle('p99').toFixed(1).padStart(7)}`,
          );
        }
      }
    } finally {
      await server.stop();
    }
  }
}
