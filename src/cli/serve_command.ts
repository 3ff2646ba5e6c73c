// `byol-align serve`: the HTTP API over an index made by `index`, until SIGINT or SIGTERM.
import { SearchIndex } from '../index/index.js';
import { buildServer } from '../serve/server.js';
import { RequestMetrics } from '../serve/metrics.js';
import { isServerWorker, joinServerWorkers, leaveServerWorkers, runServerWorkers } from '../serve/workers.js';
import { DEFAULT_BATCH_QUERIES, DEFAULT_BATCH_WAIT_MS } from '../serve/query_batcher.js';
import { setNumThreads } from '../engine/index.js';
import { MAX_THREADS } from '../config/schema.js';
import {
  deviceOption,
  exactOption,
  bf16QueriesOption,
  precisionOptions,
  deviceSetting,
  integerOption,
  requiredOption,
  stringOption,
  UsageError,
  type CommandSpec,
  type OptionValues,
} from './options.js';
import { resolveDevice } from '../run/device.js';
import { signalExitCode } from './signals.js';

export const serveSpec: CommandSpec = {
  name: 'serve',
  summary:
    'Serve an index over HTTP: POST /v1/search, POST /v1/embed, GET /v1/items/:id[/media], GET /healthz, /metrics, OpenAPI at /docs.',
  options: {
    db: { type: 'string', value: 'DIR', help: 'the LanceDB folder' },
    table: { type: 'string', value: 'NAME', help: 'the table', default: 'items' },
    checkpoint: {
      type: 'string',
      value: 'CKPT',
      help: 'embed queries with this checkpoint (default: the one that built the table; another is refused)',
    },
    host: {
      type: 'string',
      value: 'HOST',
      help: 'the address to listen on (another than loopback without --token is warned about)',
      default: '127.0.0.1',
    },
    port: { type: 'string', value: 'PORT', help: 'the port (0: any free one)', default: '8080' },
    token: {
      type: 'string',
      value: 'T',
      help: 'require Authorization: Bearer T on /v1/ routes (default: the BYOL_ALIGN_TOKEN variable, else none)',
    },
    'body-limit': { type: 'string', value: 'BYTES', help: 'largest request body', default: String(16 * 1024 * 1024) },
    'batch-wait-ms': {
      type: 'string',
      value: 'MS',
      help: 'the longest a search or embedding request waits for concurrent ones to join its batch (it runs sooner once the callers of the last batch are back)',
      default: String(DEFAULT_BATCH_WAIT_MS),
    },
    'batch-queries': {
      type: 'string',
      value: 'N',
      help: 'a batch runs as soon as N queries wait (1: no batching)',
      default: String(DEFAULT_BATCH_QUERIES),
    },
    workers: {
      type: 'string',
      value: 'N',
      help: 'server processes sharing the port, each with the index in memory and --threads threads',
      default: '1',
    },
    threads: {
      type: 'string',
      value: 'N',
      help: `libtorch threads of each server process (at most ${MAX_THREADS}); more cores: --workers`,
      default: '1',
    },
    device: deviceOption,
    exact: exactOption,
    'bf16-queries': bf16QueriesOption,
  },
  notes: 'The API is described in docs/search.md. It prints "listening on http://HOST:PORT" on stderr when ready.',
};

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

function warnIfExposed(host: string, token: string | undefined): void {
  if (!LOOPBACK.has(host) && token === undefined)
    process.stderr.write(`warning: listening on ${host} without --token: anyone who can reach it can search and read the indexed media\n`);
}

export async function serveCommand(values: OptionValues): Promise<number> {
  const db = requiredOption(values, serveSpec, 'db');
  const host = stringOption(values, 'host') ?? '127.0.0.1';
  const portText = stringOption(values, 'port') ?? '8080';
  const port = Number(portText);
  if (!/^\d+$/.test(portText) || port > 65535) throw new UsageError(`--port must be an integer from 0 to 65535, got '${portText}'`);
  const token = stringOption(values, 'token') ?? (process.env.BYOL_ALIGN_TOKEN || undefined);
  if (token !== undefined && token.length < 8) throw new UsageError('--token must have at least 8 characters');
  // One thread a process by default: a batch's ops are small, and its HTTP work shares the cores;
  // where another program holds a core, the intra-op threads wait for each other at every op
  // (bench/RESULTS.md: 66 requests/s with 2 threads against 350-520 with one, on a busy machine).
  setNumThreads(integerOption(values, 'threads', MAX_THREADS) ?? 1);
  const device = resolveDevice(deviceSetting(values) ?? 'auto', '--device');
  const workers = integerOption(values, 'workers', MAX_THREADS) ?? 1;
  if (workers < 1) throw new UsageError(`--workers must be at least 1, got ${workers}`);
  if (workers > 1 && !isServerWorker()) {
    warnIfExposed(host, token);
    const signal = await runServerWorkers(workers, ({ address, description }) =>
      process.stderr.write(`listening on ${address} (${workers} workers; ${description})\n`),
    );
    process.stderr.write(`${signal}: the workers finished the requests in flight and stopped\n`);
    return signalExitCode(signal);
  }
  try {
    return await serveIndex(values, db, host, port, token, device);
  } finally {
    if (isServerWorker()) leaveServerWorkers();
  }
}

/** One server process: opens the index and serves it until SIGINT or SIGTERM. */
async function serveIndex(
  values: OptionValues,
  db: string,
  host: string,
  port: number,
  token: string | undefined,
  device: string,
): Promise<number> {
  const index = await SearchIndex.open({
    db,
    table: stringOption(values, 'table'),
    checkpoint: stringOption(values, 'checkpoint'),
    onSkip: (m) => process.stderr.write(`skipping a broken checkpoint: ${m}\n`),
    device,
    ...precisionOptions(values),
  });
  const metrics = new RequestMetrics();
  const cluster = isServerWorker() ? joinServerWorkers(metrics) : undefined;
  const server = buildServer({
    index,
    token,
    bodyLimit: integerOption(values, 'body-limit'),
    batching: { maxWaitMs: integerOption(values, 'batch-wait-ms', 1000), maxQueries: integerOption(values, 'batch-queries', 4096) },
    metrics,
    metricsText: cluster?.metricsText,
  });
  // The handlers go in before anything is printed: a supervisor may signal as soon as it reads a line.
  // `on`, not `once`: a worker gets a terminal's Ctrl-C and then the primary's, and must not die at the second.
  const stopped = new Promise<NodeJS.Signals>((resolve) => {
    process.on('SIGINT', () => resolve('SIGINT'));
    process.on('SIGTERM', () => resolve('SIGTERM'));
  });
  const address = await server.listen({ host, port });
  const description = `${await index.count()} rows, ${index.provenance.space} space of ${index.provenance.checkpoint}`;
  if (cluster !== undefined) cluster.listening({ address, description });
  else {
    warnIfExposed(host, token);
    process.stderr.write(`listening on ${address} (${description})\n`);
  }
  const signal = await stopped;
  if (cluster === undefined) process.stderr.write(`${signal}: finishing the requests in flight, then stopping\n`);
  await server.close();
  await index.close();
  return signalExitCode(signal);
}
