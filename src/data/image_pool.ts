// A small pool of worker threads that decode image files with sharp (image_decode.ts), so that
// decoding, resizing and the pixel copies happen off the main thread while the trainer runs its
// (synchronous) libtorch step. A batch is split into one chunk per worker; each worker queues its
// chunks and keeps going while the main thread is busy, and sends each chunk back as one
// transferred buffer.
//
// Throughput note: libvips does its work on libuv's thread pool, which every thread of the
// process shares and which has 4 threads unless UV_THREADPOOL_SIZE says otherwise (it must be
// set before the process starts, e.g. `UV_THREADPOOL_SIZE=16 node train.js`). Workers beyond
// that mostly add JavaScript-side parallelism (pixel copies, bookkeeping).
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { ImageDecodeError, resolveDecodeOptions, type DecodedImage, type ImageDecodeOptions, type ImageProblem } from './image_decode.js';

/** A chunk of files for one worker (internal protocol between the pool and image_worker.ts). */
export interface WorkerRequest {
  id: number;
  paths: string[];
  options: Required<ImageDecodeOptions>;
  /** 'chw': planes per image, as an [N, C, H, W] tensor wants; 'hwc': sharp's own interleaved order. */
  layout: 'chw' | 'hwc';
}

/** A worker's answer: the chunk's pixels and the files that failed, or an unexpected error. */
export type WorkerReply =
  | { id: number; pixels: ArrayBuffer; failures: { index: number; file: string; kind: ImageProblem; problem: string }[] }
  | { id: number; fatal: string };

export interface ImagePoolOptions {
  /** Number of worker threads; default {@link ImageDecodePool.defaultSize} (CPUs − 1, at least 1). */
  size?: number;
}

/** Pixels of a batch of files in [N, C, size, size] order; a failed file's slot is left zero. */
export interface DecodedBatch {
  pixels: Uint8Array;
  /** The files that could not be decoded, by their index in the request. */
  failures: { index: number; error: ImageDecodeError }[];
}

interface Pending {
  resolve: (reply: Extract<WorkerReply, { pixels: ArrayBuffer }>) => void;
  reject: (error: Error) => void;
  images: number;
}

/**
 * The process's Node flags minus those about the main entry point, which a worker refuses
 * (`node --input-type=module -e '...'` would otherwise crash every worker at start).
 */
function workerExecArgv(): string[] {
  const flags: string[] = [];
  for (let i = 0; i < process.execArgv.length; i++) {
    const flag = process.execArgv[i]!;
    if (flag === '--input-type') {
      i++; // and its value
      continue;
    }
    if (!flag.startsWith('--input-type=')) flags.push(flag);
  }
  return flags;
}

/** One worker thread and the chunks it has been sent but not yet answered. */
class Slot {
  readonly worker: Worker;
  readonly pending = new Map<number, Pending>();
  load = 0; // images sent and not yet answered

  constructor(onFailure: (slot: Slot, error: Error) => void) {
    // The compiled worker sits beside this file (dist/src/data/image_worker.js).
    this.worker = new Worker(new URL('./image_worker.js', import.meta.url), { execArgv: workerExecArgv() });
    this.worker.unref(); // idle workers never keep the process alive; see #send
    this.worker.on('message', (reply: WorkerReply) => this.#settle(reply));
    this.worker.on('error', (err) => onFailure(this, err));
    this.worker.on('exit', (code) => onFailure(this, new Error(`the image decode worker exited with code ${code}`)));
  }

  send(request: WorkerRequest): Promise<Extract<WorkerReply, { pixels: ArrayBuffer }>> {
    return new Promise((resolve, reject) => {
      this.pending.set(request.id, { resolve, reject, images: request.paths.length });
      if (this.load === 0) this.worker.ref(); // work in flight keeps the process alive until it is answered
      this.load += request.paths.length;
      this.worker.postMessage(request);
    });
  }

  #settle(reply: WorkerReply): void {
    const pending = this.pending.get(reply.id);
    if (pending === undefined) return;
    this.pending.delete(reply.id);
    this.load -= pending.images;
    if (this.load === 0) this.worker.unref();
    if ('fatal' in reply) pending.reject(new Error(`image decode worker failed: ${reply.fatal}`));
    else pending.resolve(reply);
  }

  rejectAll(error: Error): void {
    for (const pending of this.pending.values()) pending.reject(error);
    this.pending.clear();
    this.load = 0;
    this.worker.unref();
  }
}

/**
 * Decodes image files on worker threads. Workers start on first use; close() ends them (until
 * then, idle workers do not keep the process alive, but close() frees their memory).
 *
 * @example
 * const pool = new ImageDecodePool({ size: 2 });
 * const { pixels, failures } = await pool.decodeBatch(['a.png', 'b.png'], { size: 64 });
 * const images = tensor(pixels, { shape: [2, 3, 64, 64] }); // uint8 [N, C, H, W]
 * await pool.close();
 */
export class ImageDecodePool {
  /** CPUs − 1 (one left for the main thread), at least 1. */
  static defaultSize(): number {
    return Math.max(1, availableParallelism() - 1);
  }

  readonly size: number;
  readonly #slots: (Slot | undefined)[];
  #nextId = 0;
  #closed = false;

  constructor(options: ImagePoolOptions = {}) {
    const size = options.size ?? ImageDecodePool.defaultSize();
    if (!Number.isInteger(size) || size < 1) throw new TypeError(`ImageDecodePool: size must be a positive integer, got ${size}`);
    this.size = size;
    this.#slots = new Array<Slot | undefined>(size).fill(undefined);
  }

  get closed(): boolean {
    return this.#closed;
  }

  /**
   * One file's pixels, [size, size, channels] (HWC), decoded on a worker. Rejects with an
   * {@link ImageDecodeError} naming the file and what is wrong with it.
   */
  async decode(path: string, options: ImageDecodeOptions): Promise<DecodedImage> {
    const resolved = resolveDecodeOptions(options);
    const reply = await this.#leastLoaded().send({ id: this.#nextId++, paths: [path], options: resolved, layout: 'hwc' });
    const failure = reply.failures[0];
    if (failure) throw new ImageDecodeError(failure.file, failure.kind, failure.problem);
    return { data: new Uint8Array(reply.pixels), height: resolved.size, width: resolved.size, channels: resolved.channels };
  }

  /**
   * The pixels of many files in [N, C, size, size] order, decoded in one chunk per worker.
   * Files that fail do not fail the batch: they are listed in `failures` (with their index) and
   * their slots stay zero, so the caller applies its own fail-or-skip policy.
   */
  async decodeBatch(paths: readonly string[], options: ImageDecodeOptions): Promise<DecodedBatch> {
    const resolved = resolveDecodeOptions(options);
    const perImage = resolved.size * resolved.size * resolved.channels;
    const chunkCount = Math.min(this.size, paths.length);
    if (chunkCount === 0) return { pixels: new Uint8Array(0), failures: [] };
    const chunkLength = Math.ceil(paths.length / chunkCount);
    const chunks: { start: number; paths: string[] }[] = [];
    for (let start = 0; start < paths.length; start += chunkLength) chunks.push({ start, paths: paths.slice(start, start + chunkLength) });
    const replies = await Promise.all(
      chunks.map((chunk) => this.#leastLoaded().send({ id: this.#nextId++, paths: chunk.paths, options: resolved, layout: 'chw' })),
    );
    const failures: DecodedBatch['failures'] = [];
    replies.forEach((reply, c) => {
      for (const f of reply.failures)
        failures.push({ index: chunks[c]!.start + f.index, error: new ImageDecodeError(f.file, f.kind, f.problem) });
    });
    failures.sort((a, b) => a.index - b.index);
    if (replies.length === 1) return { pixels: new Uint8Array(replies[0]!.pixels), failures };
    const pixels = new Uint8Array(paths.length * perImage);
    replies.forEach((reply, c) => pixels.set(new Uint8Array(reply.pixels), chunks[c]!.start * perImage));
    return { pixels, failures };
  }

  /** Ends the workers; decodes still in flight reject. Safe to call twice. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const slots = this.#slots.filter((s): s is Slot => s !== undefined);
    this.#slots.fill(undefined);
    const closing = new Error('ImageDecodePool was closed while images were being decoded');
    for (const slot of slots) slot.rejectAll(closing);
    await Promise.all(slots.map((slot) => slot.worker.terminate()));
  }

  /** The worker with the fewest images outstanding: an idle started one, else an unstarted one (started now), else the least busy. */
  #leastLoaded(): Slot {
    if (this.#closed) throw new Error('ImageDecodePool: the pool is closed; create a new one');
    let best = 0;
    let bestRank = Infinity;
    this.#slots.forEach((slot, i) => {
      const rank = slot === undefined ? 1 : 2 * slot.load;
      if (rank < bestRank) [best, bestRank] = [i, rank];
    });
    return (this.#slots[best] ??= new Slot((slot, error) => this.#onWorkerFailure(slot, error)));
  }

  /** A worker that crashed or exited: its chunks reject, and a fresh worker replaces it on next use. */
  #onWorkerFailure(slot: Slot, error: Error): void {
    const index = this.#slots.indexOf(slot);
    if (index !== -1) this.#slots[index] = undefined;
    slot.rejectAll(error);
    if (!this.#closed) void slot.worker.terminate();
  }
}
