// Several server processes on one port (node:cluster), for machines where one process's main
// thread is the limit: it parses every request, serialises every answer and runs every batch's
// forward pass and search, so a second core helps a single process only inside libtorch's ops.
// Each worker opens the index itself and serves the connections the primary hands it; the
// primary forwards SIGINT/SIGTERM, and /metrics, answered by whichever worker a scrape reaches,
// adds up every worker's counts. Memory grows with the workers: each holds the model and the
// embeddings.
import cluster, { type Worker } from 'node:cluster';
import { RequestMetrics, type MetricsSnapshot } from './metrics.js';

/** What a worker tells the primary once it listens. */
export interface WorkerReady {
  address: string;
  /** The index it serves, in words. */
  description: string;
}

type Message =
  | ({ byolAlign: 'listening' } & WorkerReady)
  | { byolAlign: 'metrics-wanted'; id: number }
  | { byolAlign: 'snapshot-wanted'; id: number; from: number }
  | { byolAlign: 'snapshot'; id: number; from: number; snapshot: MetricsSnapshot }
  | { byolAlign: 'snapshots'; id: number; snapshots: MetricsSnapshot[] };

const isMessage = (value: unknown): value is Message =>
  typeof value === 'object' && value !== null && typeof (value as { byolAlign?: unknown }).byolAlign === 'string';

/** True in a worker process of a server started with several workers. */
export function isServerWorker(): boolean {
  return cluster.isWorker;
}

/**
 * Starts `count` workers running this same command and waits: resolves with the signal that
 * stopped them (after every worker finished its requests and exited), or rejects when a worker
 * exits on its own (its error is on stderr), after stopping the others.
 */
export function runServerWorkers(count: number, onReady: (ready: WorkerReady) => void): Promise<NodeJS.Signals> {
  const workers: Worker[] = Array.from({ length: count }, () => cluster.fork());
  let listening = 0;
  let stopping: NodeJS.Signals | undefined;
  // A /metrics scrape: the snapshots of every worker, gathered for the worker that asked.
  const gathering = new Map<string, { asker: Worker; snapshots: MetricsSnapshot[] }>();
  return new Promise((resolve, reject) => {
    const alive = (w: Worker): boolean => w.process.exitCode === null && w.process.signalCode === null;
    const stopAll = (signal: NodeJS.Signals): void => {
      stopping ??= signal;
      for (const w of workers) if (alive(w)) w.process.kill(signal);
    };
    process.on('SIGINT', () => stopAll('SIGINT'));
    process.on('SIGTERM', () => stopAll('SIGTERM'));
    let exited = 0;
    for (const worker of workers) {
      worker.on('message', (message: unknown) => {
        if (!isMessage(message)) return;
        if (message.byolAlign === 'listening' && ++listening === count) onReady(message);
        if (message.byolAlign === 'metrics-wanted') {
          gathering.set(`${worker.id}:${message.id}`, { asker: worker, snapshots: [] });
          for (const w of workers) w.send({ byolAlign: 'snapshot-wanted', id: message.id, from: worker.id });
        }
        if (message.byolAlign === 'snapshot') {
          const key = `${message.from}:${message.id}`;
          const entry = gathering.get(key);
          if (entry === undefined) return;
          entry.snapshots.push(message.snapshot);
          if (entry.snapshots.length === workers.filter(alive).length) {
            gathering.delete(key);
            entry.asker.send({ byolAlign: 'snapshots', id: message.id, snapshots: entry.snapshots });
          }
        }
      });
      worker.on('exit', (code, signal) => {
        exited++;
        if (stopping === undefined) {
          stopAll('SIGTERM');
          reject(new Error(`server worker ${worker.process.pid} exited with ${signal ?? code}; the others were stopped`));
        }
        if (exited === count) resolve(stopping!);
      });
    }
  });
}

/**
 * In a worker, once it stopped or failed: closes its channel to the primary (which would keep it
 * alive) so that it exits with its own exit code (a plain disconnect would exit with 0).
 */
export function leaveServerWorkers(): void {
  cluster.worker?.disconnect();
}

/**
 * In a worker: answers the primary's requests for this worker's counts (`own`, the server's), and
 * returns what its /metrics answers (the sum over every worker) and how it tells the primary it listens.
 */
export function joinServerWorkers(own: RequestMetrics): { metricsText: () => Promise<string>; listening: (ready: WorkerReady) => void } {
  const waiting = new Map<number, (snapshots: MetricsSnapshot[]) => void>();
  let nextId = 0;
  process.on('message', (message: unknown) => {
    if (!isMessage(message)) return;
    if (message.byolAlign === 'snapshot-wanted')
      process.send!({ byolAlign: 'snapshot', id: message.id, from: message.from, snapshot: own.snapshot() });
    if (message.byolAlign === 'snapshots') {
      waiting.get(message.id)?.(message.snapshots);
      waiting.delete(message.id);
    }
  });
  return {
    metricsText: () =>
      new Promise<string>((resolve) => {
        const id = nextId++;
        waiting.set(id, (snapshots) => resolve(RequestMetrics.sum(snapshots).text()));
        process.send!({ byolAlign: 'metrics-wanted', id });
      }),
    listening: (ready) => process.send!({ byolAlign: 'listening', ...ready }),
  };
}
