// A batch's clips become features on a thread of their own (node:worker_threads): decoding,
// resampling and the log-mel spectrograms take about 0.7 s of CPU for 128 two-second clips, and
// on the trainer's thread they ran between steps, so the step waited for them (bench/RESULTS.md:
// 28% of a three-modality step's time on an idle machine). Here they run while the step does
// (src/align/batches.ts collates one batch ahead). One thread serves the whole process, started at
// the first batch and holding one featuriser per set of settings; it never keeps the process
// alive while it has nothing to do. Its errors come back as the errors the same work throws on
// the calling thread: a clip that does not decode is an AudioDecodeError naming the file and its
// index, so onBadRecord 'skip' leaves it out as before.
import { Worker } from 'node:worker_threads';
import type { AudioItem, AudioNormalization, AudioSettings } from './index.js';
import { AudioDecodeError } from './decode.js';

/** One batch's clips, and how to make their features (internal protocol with feature_worker.ts). */
export interface FeatureRequest {
  id: number;
  settings: AudioSettings;
  normalization: AudioNormalization;
  items: AudioItem[];
}

export interface FeatureError {
  name: string;
  message: string;
  /** An AudioDecodeError's file, problem and item index. */
  file?: string;
  problem?: string;
  index?: number;
}

export type FeatureReply = { id: number; values: Float32Array } | { id: number; error: FeatureError };

/** The error as the calling thread throws it. */
function rebuilt(error: FeatureError): Error {
  if (error.name === 'AudioDecodeError') return new AudioDecodeError(error.file!, error.problem!, { index: error.index });
  if (error.name === 'RangeError') return new RangeError(error.message); // a sample that is not a finite number
  return new Error(error.message);
}

class FeatureThread {
  #worker: Worker | undefined;
  readonly #pending = new Map<number, { resolve: (values: Float32Array) => void; reject: (error: Error) => void }>();
  #nextId = 0;

  /** The normalised log-mel values of `items`, [N, nMels, frames] flattened, computed on the thread. */
  features(settings: AudioSettings, normalization: AudioNormalization, items: AudioItem[]): Promise<Float32Array> {
    const worker = (this.#worker ??= this.#start());
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      // Held while it has work, so that the process waits for the answer.
      worker.ref();
      worker.postMessage({ id, settings, normalization, items } satisfies FeatureRequest);
    });
  }

  #start(): Worker {
    // The compiled worker sits beside this file (dist/src/modalities/audio/feature_worker.js).
    const worker = new Worker(new URL('./feature_worker.js', import.meta.url));
    worker.unref();
    worker.on('message', (reply: FeatureReply) => {
      const call = this.#pending.get(reply.id);
      if (call === undefined) return;
      this.#pending.delete(reply.id);
      if (this.#pending.size === 0) worker.unref();
      if ('error' in reply) call.reject(rebuilt(reply.error));
      else call.resolve(reply.values);
    });
    const fail = (error: Error): void => {
      // The next call starts a new thread.
      this.#worker = undefined;
      for (const call of this.#pending.values()) call.reject(error);
      this.#pending.clear();
    };
    worker.on('error', (error) => fail(new Error(`the audio feature thread failed: ${error.message}`)));
    worker.on('exit', (code) => fail(new Error(`the audio feature thread exited with code ${code}`)));
    return worker;
  }
}

/** The process's feature thread. */
export const featureThread = new FeatureThread();
